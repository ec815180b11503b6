//! Locks, semaphores, events, conditions and barriers shared by processes.
//!
//! Each lives in a [`Shm`] page made before `fork`, and every wait sleeps in the kernel
//! ([`wait_word`]) until it is woken, its deadline passes, or a signal arrives: nothing
//! wakes up to look around.
//!
//! - **Locks** ([`RawLock`], under [`Lock`] and [`RLock`]) are robust futexes (see
//!   [`super::futex`]): the word holds the holder's thread id, and the lock is on the
//!   holder's robust list, so when the holder dies (SIGKILL included) the kernel marks the
//!   word `FUTEX_OWNER_DIED` and wakes a waiter. That waiter's `acquire` fails with a
//!   catchable `ProcessError` naming the dead process, and frees the lock, which wakes the
//!   next waiter: nobody hangs, and someone finds out. The holder's pid is kept beside the
//!   word, since the kernel clears the thread id.
//! - **Timeouts** always work, dead holder or not.
//! - [`Condition`] counts its sleepers and the notifications not yet taken, so `notify(n)`
//!   wakes exactly `n` waiters (or all there are) and only those return `true`.
//! - Semaphores, events, conditions and barriers have no owner: a process that dies
//!   without releasing or arriving leaves them as they are, and only timeouts help.

use std::rc::Rc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use rhai::FnPtr;

use super::futex::{futex_wake, with_list, Slot, OWNER_DIED, SLOT, TID_MASK, WAITERS};
use super::shm::Shm;
use crate::error::{Error, ErrorKind, Result};

pub use super::futex::pid_alive;
use crate::process::wait::wait_word;
pub use crate::process::wait::Deadline;

/// How often a waiter checks that a lock's holder is still alive where the kernel cannot
/// watch it (no usable robust list); also the Queue's check on a writer that stopped in the
/// middle of a message.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(50);

/// How many times a contended acquire checks the word before sleeping.
const SPINS: u32 = 100;

/// Where lock slots start in a page: [`RawLock::new`] slot `i` takes the [`SLOT`] bytes
/// from `LOCK_AREA + SLOT * i`, so the start of the page stays free for the words of
/// whoever owns it (a Queue's counters, a Barrier's state).
pub const LOCK_AREA: usize = 2048;

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
    /// The caller holds the lock, taken over from this dead process (0: a process that died
    /// before its pid was recorded, in the few instructions after it took the word).
    TookOver(u32),
}

/// How the wait for the word ended, before the robust list is updated.
enum Taken {
    Got,
    TimedOut,
    OwnerDied(u32),
}

/// A mutual-exclusion lock in a [`Slot`] of shared memory: the word is 0 when free, else
/// the holder's thread id with `FUTEX_WAITERS` set when someone may be waiting, or
/// `FUTEX_OWNER_DIED` once the kernel found the holder gone.
#[derive(Clone)]
pub struct RawLock {
    slot: Slot,
}

impl RawLock {
    /// The lock in slot `index` of `shm`'s lock area (see [`LOCK_AREA`]), which must be
    /// zero to start with (free).
    ///
    /// # Panics
    /// If the slot does not fit in the mapping.
    pub fn new(shm: Rc<Shm>, index: usize) -> Self {
        Self {
            slot: Slot::new(shm, LOCK_AREA + SLOT * index),
        }
    }

    fn word(&self) -> &AtomicU32 {
        self.slot.word()
    }

    /// The pid of the holder, if held (a holder that died keeps its pid here until someone
    /// takes the lock over).
    pub fn holder(&self) -> Option<u32> {
        let v = self.word().load(SeqCst);
        if v & (TID_MASK | OWNER_DIED) == 0 {
            return None;
        }
        match self.slot.owner().load(SeqCst) {
            0 => Some(v & TID_MASK).filter(|&t| t != 0),
            pid => Some(pid),
        }
    }

    /// Whether some process holds it (or held it when it died, and nobody noticed yet).
    pub fn locked(&self) -> bool {
        self.word().load(SeqCst) & (TID_MASK | OWNER_DIED) != 0
    }

    /// Whether this thread holds it.
    pub fn is_mine(&self) -> bool {
        let me = with_list(|list| list.tid());
        self.word().load(SeqCst) & TID_MASK == me
    }

    /// The spare word of the slot (an `RLock`'s count).
    fn extra(&self) -> &AtomicU32 {
        self.slot.extra()
    }

    /// Takes the lock, waiting until `deadline`.
    pub fn acquire(
        &self,
        deadline: Deadline,
        on_dead: OnDeadHolder,
        what: &str,
    ) -> Result<Acquired> {
        let word = self.word();
        let fast = with_list(|list| {
            list.reconcile();
            list.begin(&self.slot);
            if word.compare_exchange(0, list.tid(), SeqCst, SeqCst).is_ok() {
                list.hold(&self.slot);
                list.end();
                return Ok(());
            }
            Err((list.tid(), list.robust()))
        });
        let Err((me, robust)) = fast else {
            return Ok(Acquired::Yes);
        };
        let taken = self.take(me, robust, deadline, what);
        let acquired = with_list(|list| {
            let acquired = match taken {
                Ok(Taken::Got) => Ok(Acquired::Yes),
                Ok(Taken::OwnerDied(pid)) => Ok(Acquired::TookOver(pid)),
                Ok(Taken::TimedOut) => Ok(Acquired::TimedOut),
                Err(e) => Err(e),
            };
            if let Ok(Acquired::Yes | Acquired::TookOver(_)) = acquired {
                list.hold(&self.slot);
            }
            list.end();
            acquired
        });
        match acquired {
            Ok(Acquired::TookOver(dead)) if on_dead == OnDeadHolder::Fail => {
                self.release();
                let who = if dead == 0 {
                    "a process".to_string()
                } else {
                    format!("process {dead}")
                };
                Err(Error::process(format!(
                    "{what} was held by {who}, which ended without releasing it; \
                     the lock has been freed (acquire again to take it)"
                )))
            }
            Ok(Acquired::TimedOut) | Err(_) => {
                // The kernel wakes one waiter when a holder dies: if that was us, pass it on.
                if self.word().load(SeqCst) & TID_MASK == 0 {
                    futex_wake(self.word(), 1);
                }
                acquired
            }
            other => other,
        }
    }

    fn take(&self, me: u32, robust: bool, deadline: Deadline, what: &str) -> Result<Taken> {
        let word = self.word();
        if word.compare_exchange(0, me, SeqCst, SeqCst).is_ok() {
            return Ok(Taken::Got);
        }
        // The holder usually lets go within a few hundred nanoseconds (it is running on
        // another CPU): spin briefly before going to sleep in the kernel.
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if word.load(Relaxed) == 0 && word.compare_exchange(0, me, SeqCst, SeqCst).is_ok() {
                return Ok(Taken::Got);
            }
        }
        let mut next_check = Instant::now() + LIVENESS_CHECK;
        loop {
            let v = word.load(SeqCst);
            if v & TID_MASK == 0 {
                // Free, or its holder died. Others may be waiting: keep the bit so that our
                // release wakes them.
                if word
                    .compare_exchange(v, me | WAITERS, SeqCst, SeqCst)
                    .is_ok()
                {
                    if v & OWNER_DIED != 0 {
                        return Ok(Taken::OwnerDied(self.slot.owner().load(SeqCst)));
                    }
                    return Ok(Taken::Got);
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
            if v & TID_MASK == me && !deadline.is_some() {
                return Err(Error::process(format!(
                    "{what} is already held by this process (a second acquire would wait forever; use an RLock)"
                )));
            }
            if deadline.passed() {
                return Ok(Taken::TimedOut);
            }
            if robust {
                wait_word(word, v | WAITERS, deadline)?;
                continue;
            }
            // Without the kernel's help: look at the holder now and then.
            wait_word(
                word,
                v | WAITERS,
                deadline.min(Deadline::at(Some(next_check))),
            )?;
            if Instant::now() >= next_check {
                next_check = Instant::now() + LIVENESS_CHECK;
                let holder = self.slot.owner().load(SeqCst);
                if holder != 0 && !pid_alive(holder) {
                    // Mark it as the kernel would have.
                    let _ =
                        word.compare_exchange(v | WAITERS, OWNER_DIED | WAITERS, SeqCst, SeqCst);
                }
            }
        }
    }

    /// Frees the lock, whoever holds it (Python lets any process release a `Lock`).
    /// `false` if it was not held.
    pub fn release(&self) -> bool {
        let word = self.word();
        with_list(|list| loop {
            let v = word.load(SeqCst);
            let tid = v & TID_MASK;
            if tid == 0 && v & OWNER_DIED == 0 {
                return false;
            }
            if tid == list.tid() {
                list.begin(&self.slot);
                list.unhold(&self.slot);
                // Still ours: no other process writes the pid now. (Killed between here and
                // the word, this process would be "a process" in the waiters' error.)
                self.slot.owner().store(0, Relaxed);
                let mut v = v;
                loop {
                    match word.compare_exchange(v, 0, SeqCst, SeqCst) {
                        Ok(_) => {
                            if v & WAITERS != 0 {
                                futex_wake(word, 1);
                            }
                            break;
                        }
                        // A waiter set the waiters bit.
                        Err(now) if now & TID_MASK == tid => v = now,
                        // Another process released it meanwhile.
                        Err(_) => break,
                    }
                }
                list.end();
                return true;
            }
            // Held by another process or thread: its robust list lets go of the slot at its
            // next lock operation (see `ThreadList::reconcile`).
            let owner = self.slot.owner().load(SeqCst);
            if word.compare_exchange(v, 0, SeqCst, SeqCst).is_ok() {
                let _ = self.slot.owner().compare_exchange(owner, 0, SeqCst, SeqCst);
                if v & WAITERS != 0 {
                    futex_wake(word, 1);
                }
                return true;
            }
        })
    }
}

/// Python's `multiprocessing.Lock`: any process may release it once it is held.
#[derive(Clone)]
pub struct Lock(RawLock);

impl Lock {
    /// A new, free lock.
    pub fn new() -> Result<Self> {
        Ok(Self(RawLock::new(Shm::new(LOCK_AREA + SLOT)?, 0)))
    }

    /// Takes the lock; `false` if `timeout` passed first.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        let got = self
            .0
            .acquire(Deadline::after(timeout), OnDeadHolder::Fail, "the Lock")?;
        Ok(got != Acquired::TimedOut)
    }

    /// Frees the lock; `ValueError` if it is not held (Python's message).
    pub fn release(&self) -> Result<()> {
        if self.0.release() {
            Ok(())
        } else {
            Err(Error::value(
                "cannot release an unlocked Lock (semaphore or lock released too many times)",
            ))
        }
    }

    /// The pid of the holder.
    pub fn holder(&self) -> Option<u32> {
        self.0.holder()
    }

    /// Whether some process holds it.
    pub fn locked(&self) -> bool {
        self.0.locked()
    }

    /// Whether this process holds it.
    pub fn is_mine(&self) -> bool {
        self.0.is_mine()
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
            raw: RawLock::new(Shm::new(LOCK_AREA + SLOT)?, 0),
        })
    }

    fn count(&self) -> &AtomicU32 {
        self.raw.extra()
    }

    /// Takes the lock (again, if this process holds it); `false` on timeout.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.raw.is_mine() {
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

    /// Releases one level; only the holder may (`AssertionError`, as Python's
    /// `multiprocessing.RLock`).
    pub fn release(&self) -> Result<()> {
        if !self.raw.is_mine() {
            return Err(Error::new(
                ErrorKind::AssertionError,
                "cannot release an RLock this process does not hold \
                 (attempt to release recursive lock not owned by thread)",
            ));
        }
        if self.count().load(SeqCst) > 1 {
            self.count().fetch_sub(1, SeqCst);
        } else {
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
        self.raw.is_mine()
    }

    /// Whether some process holds it.
    pub fn locked(&self) -> bool {
        self.raw.locked()
    }

    /// How many times its holder acquired it (0 when free).
    pub fn level(&self) -> u32 {
        if self.raw.locked() {
            self.count().load(SeqCst)
        } else {
            0
        }
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

/// A `Lock` or an `RLock`: what a [`Condition`] (Python's `Condition(lock)`) or a shared
/// value (`lock: ...`) may be given.
#[derive(Clone)]
pub enum AnyLock {
    /// A plain lock.
    Lock(Lock),
    /// A reentrant lock (the default).
    RLock(RLock),
}

impl AnyLock {
    /// Whether this process holds it.
    pub fn is_mine(&self) -> bool {
        match self {
            Self::Lock(l) => l.is_mine(),
            Self::RLock(l) => l.is_mine(),
        }
    }

    fn release_all(&self) -> u32 {
        match self {
            Self::Lock(l) => u32::from(l.0.release()),
            Self::RLock(l) => l.release_all(),
        }
    }

    fn restore(&self, count: u32) -> Result<()> {
        match self {
            Self::Lock(l) => {
                l.0.acquire(Deadline::NEVER, OnDeadHolder::Fail, "the Condition's lock")
                    .map(|_| ())
            }
            Self::RLock(l) => l.restore(count),
        }
    }

    /// The pid of the holder.
    pub fn holder(&self) -> Option<u32> {
        match self {
            Self::Lock(l) => l.holder(),
            Self::RLock(l) => l.holder(),
        }
    }

    /// Takes the lock; `false` on timeout.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        match self {
            Self::Lock(l) => l.acquire(timeout),
            Self::RLock(l) => l.acquire(timeout),
        }
    }

    /// Releases the lock (one level of an `RLock`).
    pub fn release(&self) -> Result<()> {
        match self {
            Self::Lock(l) => l.release(),
            Self::RLock(l) => l.release(),
        }
    }
}

// A Condition's page: word 0 a sequence number bumped by every notify (the futex waiters
// sleep on), word 1 sleepers not yet notified, word 2 notifications not yet taken.
const SEQ: usize = 0;
const SLEEPERS: usize = 1;
const TOKENS: usize = 2;

/// Python's `Condition`: wait for a notification while its lock is let go.
///
/// Waiters and notifiers change the counts while holding the lock, except that a woken
/// waiter takes its notification (a *token*) before it has the lock back. A waiter may take
/// a token only once a notify happened after it began to wait, so a late waiter never takes
/// a notification meant for earlier ones, and a waiter whose timeout ends at the moment it
/// is notified still counts as notified (and returns `true`). So `notify(n)` wakes exactly
/// `min(n, waiters)` waiters, and exactly those return `true`.
#[derive(Clone)]
pub struct Condition {
    lock: AnyLock,
    shm: Rc<Shm>,
}

impl Condition {
    /// A new condition over `lock`, or over a new `RLock`.
    pub fn new(lock: Option<AnyLock>) -> Result<Self> {
        let lock = match lock {
            Some(lock) => lock,
            None => AnyLock::RLock(RLock::new()?),
        };
        Ok(Self {
            lock,
            shm: Shm::new(12)?,
        })
    }

    /// Its lock.
    pub fn lock(&self) -> &AnyLock {
        &self.lock
    }

    fn ensure_held(&self, what: &str) -> Result<()> {
        if self.lock.is_mine() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::AssertionError,
                format!("{what} needs the Condition's lock, which this process does not hold"),
            ))
        }
    }

    fn take_token(&self) -> bool {
        self.shm
            .u32(TOKENS)
            .fetch_update(SeqCst, SeqCst, |t| t.checked_sub(1))
            .is_ok()
    }

    /// Lets the lock go, waits for a notify or the timeout, and takes the lock back.
    /// Returns `false` if the timeout passed without a notify for this waiter.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.ensure_held("wait")?;
        let deadline = Deadline::after(timeout);
        let seq = self.shm.u32(SEQ);
        let began = seq.load(SeqCst);
        self.shm.u32(SLEEPERS).fetch_add(1, SeqCst);
        let count = self.lock.release_all();
        let mut notified = false;
        let mut waited = Ok(());
        loop {
            let now = seq.load(SeqCst);
            if now != began && self.take_token() {
                notified = true;
                break;
            }
            match wait_word(seq, now, deadline) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    waited = Err(e);
                    break;
                }
            }
        }
        let restored = self.lock.restore(count);
        if !notified {
            // Timed out (or interrupted): a notify may have come at the last moment.
            if seq.load(SeqCst) != began && self.take_token() {
                notified = true;
            } else {
                let _ = self
                    .shm
                    .u32(SLEEPERS)
                    .fetch_update(SeqCst, SeqCst, |s| s.checked_sub(1));
            }
        }
        waited?;
        restored?;
        Ok(notified)
    }

    /// Wakes up to `n` waiters.
    pub fn notify(&self, n: u32) -> Result<()> {
        self.ensure_held("notify")?;
        let sleepers = self.shm.u32(SLEEPERS);
        let woken = n.min(sleepers.load(SeqCst));
        if woken == 0 {
            return Ok(());
        }
        sleepers.fetch_sub(woken, SeqCst);
        self.shm.u32(TOKENS).fetch_add(woken, SeqCst);
        self.shm.u32(SEQ).fetch_add(1, SeqCst);
        futex_wake(self.shm.u32(SEQ), woken.min(i32::MAX as u32) as i32);
        Ok(())
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<()> {
        self.notify(u32::MAX)
    }
}

// A Barrier's page: word 0 its state (Python's: 0 filling, 1 draining, -1 resetting,
// -2 broken), word 1 how many are inside `wait`, word 2 a sequence number bumped to wake
// every waiter; its lock in slot 0 of the lock area.
const STATE: usize = 0;
const COUNT: usize = 1;
const BARRIER_SEQ: usize = 2;
const FILLING: i32 = 0;
const DRAINING: i32 = 1;
const RESETTING: i32 = -1;
const BROKEN: i32 = -2;

fn broken_barrier(why: &str) -> Error {
    Error::new(
        ErrorKind::BrokenBarrierError,
        format!("the Barrier is broken: {why}"),
    )
}

/// Python's `Barrier(parties, action, timeout)`: `wait` returns once `parties` processes
/// have called it; `action` runs in one of them (the last to arrive) first. Python's
/// algorithm (`threading.Barrier`) over shared words, a robust lock and a futex.
#[derive(Clone)]
pub struct Barrier {
    shm: Rc<Shm>,
    parties: u32,
    timeout: Option<Duration>,
    action: Option<FnPtr>,
}

impl Barrier {
    /// A barrier for `parties` processes, running `action` when it trips, with `timeout` as
    /// the default for `wait`.
    pub fn new(parties: u32, action: Option<FnPtr>, timeout: Option<Duration>) -> Result<Self> {
        if parties == 0 {
            return Err(Error::value("a Barrier needs at least one party"));
        }
        Ok(Self {
            shm: Shm::new(LOCK_AREA + SLOT)?,
            parties,
            timeout,
            action,
        })
    }

    /// How many processes must arrive.
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// The function run when the barrier trips.
    pub fn action(&self) -> Option<&FnPtr> {
        self.action.as_ref()
    }

    fn state(&self) -> i32 {
        self.shm.u32(STATE).load(SeqCst) as i32
    }

    fn set_state(&self, state: i32) {
        self.shm.u32(STATE).store(state as u32, SeqCst);
    }

    fn count(&self) -> &AtomicU32 {
        self.shm.u32(COUNT)
    }

    /// How many are waiting now.
    pub fn n_waiting(&self) -> u32 {
        if self.state() == FILLING {
            self.count().load(SeqCst)
        } else {
            0
        }
    }

    /// Whether it is broken (by `abort`, a timeout, or a failed action).
    pub fn broken(&self) -> bool {
        self.state() == BROKEN
    }

    /// Takes the internal lock. A party that died holding it may have left the state half
    /// changed: the barrier is then broken.
    fn lock(&self) -> Result<RawLock> {
        let lock = RawLock::new(self.shm.clone(), 0);
        if let Acquired::TookOver(_) = lock.acquire(
            Deadline::NEVER,
            OnDeadHolder::TakeOver,
            "the Barrier's lock",
        )? {
            self.break_barrier();
        }
        Ok(lock)
    }

    fn notify_all(&self) {
        self.shm.u32(BARRIER_SEQ).fetch_add(1, SeqCst);
        futex_wake(self.shm.u32(BARRIER_SEQ), i32::MAX);
    }

    fn break_barrier(&self) {
        self.set_state(BROKEN);
        self.notify_all();
    }

    /// Lets the lock go, waits for a change or the deadline, and takes the lock back:
    /// `false` on timeout.
    fn wait_change(&self, lock: &RawLock, deadline: Deadline) -> Result<bool> {
        let seq = self.shm.u32(BARRIER_SEQ);
        let seen = seq.load(SeqCst);
        lock.release();
        let waited = wait_word(seq, seen, deadline);
        let relocked = self.lock();
        let changed = waited?;
        relocked?;
        Ok(changed)
    }

    /// Arrives and waits for the others; returns this party's arrival index (0 for the
    /// first). The last to arrive runs `action` first (and an error in it breaks the
    /// barrier). If `timeout` (or the barrier's default) passes first, the barrier breaks:
    /// `BrokenBarrierError` here and in every waiting party.
    pub fn wait<E: From<Error>>(
        &self,
        timeout: Option<Duration>,
        action: impl FnOnce(&FnPtr) -> std::result::Result<(), E>,
    ) -> std::result::Result<u32, E> {
        let deadline = Deadline::after(timeout.or(self.timeout));
        let lock = self.lock()?;
        // Wait while the previous round drains or a reset completes.
        while matches!(self.state(), DRAINING | RESETTING) {
            self.wait_change(&lock, Deadline::NEVER)?;
        }
        if self.state() != FILLING {
            lock.release();
            return Err(broken_barrier("it was aborted, reset or timed out").into());
        }
        let index = self.count().fetch_add(1, SeqCst);
        let result = if index + 1 >= self.parties {
            let ran = match &self.action {
                Some(f) => action(f),
                None => Ok(()),
            };
            match ran {
                Ok(()) => {
                    self.set_state(DRAINING);
                    self.notify_all();
                    Ok(index)
                }
                Err(e) => {
                    self.break_barrier();
                    Err(e)
                }
            }
        } else {
            self.wait_for_release(&lock, deadline)
                .map_err(E::from)
                .map(|()| index)
        };
        // Leave: the last one out of a drained or reset round opens the next.
        self.count().fetch_sub(1, SeqCst);
        if self.count().load(SeqCst) == 0 && matches!(self.state(), DRAINING | RESETTING) {
            self.set_state(FILLING);
            self.notify_all();
        }
        lock.release();
        result
    }

    fn wait_for_release(&self, lock: &RawLock, deadline: Deadline) -> Result<()> {
        while self.state() == FILLING {
            if !self.wait_change(lock, deadline)? && self.state() == FILLING {
                self.break_barrier();
                return Err(broken_barrier(&format!(
                    "wait timed out with {} of {} parties arrived",
                    self.count().load(SeqCst),
                    self.parties
                )));
            }
        }
        if self.state() < 0 {
            return Err(broken_barrier("it was aborted, reset or timed out"));
        }
        Ok(())
    }

    /// Breaks the barrier: every waiting party, and every later `wait`, gets a
    /// `BrokenBarrierError` until `reset`.
    pub fn abort(&self) -> Result<()> {
        let lock = self.lock()?;
        self.break_barrier();
        lock.release();
        Ok(())
    }

    /// Back to the empty state; parties waiting now get a `BrokenBarrierError`.
    pub fn reset(&self) -> Result<()> {
        let lock = self.lock()?;
        if self.count().load(SeqCst) > 0 {
            if matches!(self.state(), FILLING | BROKEN) {
                self.set_state(RESETTING);
            }
        } else {
            self.set_state(FILLING);
        }
        self.notify_all();
        lock.release();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes a robust, process-shared pthread mutex at `at`.
    fn robust_mutex(at: usize) -> *mut libc::pthread_mutex_t {
        let mutex = at as *mut libc::pthread_mutex_t;
        // SAFETY: `at` is 8-aligned memory of a live mapping with room for a mutex (the
        // callers use the start of a page); the attribute object lives on this stack.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
            assert_eq!(
                libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
                0
            );
            assert_eq!(
                libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
                0
            );
            assert_eq!(libc::pthread_mutex_init(mutex, &attr), 0);
        }
        mutex
    }

    /// The entries of this thread's robust list, first to last.
    fn list_entries() -> Vec<usize> {
        let mut head: usize = 0;
        let mut len: usize = 0;
        let mut entries = Vec::new();
        // SAFETY: reads this thread's registration into two locals, then walks the list,
        // whose entries are locks this thread holds (mapped while held).
        unsafe {
            let rc = libc::syscall(
                libc::SYS_get_robust_list,
                0 as libc::c_long,
                &mut head as *mut usize,
                &mut len as *mut usize,
            );
            assert_eq!(rc, 0);
            let mut entry = std::ptr::read_volatile(head as *const usize) & !1;
            while entry != head && entries.len() < 100 {
                entries.push(entry);
                entry = std::ptr::read_volatile(entry as *const usize) & !1;
            }
        }
        entries
    }

    #[test]
    fn locks_share_glibcs_robust_list_and_the_kernel_marks_them_when_the_thread_ends() {
        // A thread takes glibc robust mutexes and our locks in turns, lets some go in the
        // middle of the list, and ends holding one of each: the kernel must mark both.
        let (send, recv) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let shm = Shm::new(4096).unwrap();
            let (m1, m2) = (robust_mutex(shm.address(0)), robust_mutex(shm.address(64)));
            let (l1, l2) = (RawLock::new(shm.clone(), 0), RawLock::new(shm.clone(), 1));
            let take = |l: &RawLock| l.acquire(Deadline::NEVER, OnDeadHolder::Fail, "l");
            // SAFETY: m1 and m2 are initialised robust mutexes in `shm`, which outlives them.
            unsafe {
                assert_eq!(libc::pthread_mutex_lock(m1), 0);
                assert_eq!(take(&l1).unwrap(), Acquired::Yes);
                assert_eq!(libc::pthread_mutex_lock(m2), 0);
                assert_eq!(take(&l2).unwrap(), Acquired::Yes);
                assert_eq!(list_entries().len(), 4);
                assert_eq!(libc::pthread_mutex_unlock(m1), 0);
                assert!(l1.release());
            }
            let node =
                |i: usize| shm.address(LOCK_AREA + SLOT * i + super::super::futex::layout().node);
            assert_eq!(list_entries(), vec![node(1), shm.address(64) + 32]);
            send.send((shm.address(0), l2.word() as *const AtomicU32 as usize))
                .unwrap();
            // Ends holding m2 and l2; `shm` stays mapped while l2 is on the list.
        })
        .join()
        .unwrap();
        let (base, word) = recv.recv().unwrap();
        // SAFETY: the mapping outlives the thread (its robust list keeps it), and the words
        // are aligned atomics in it.
        unsafe {
            let word = &*(word as *const AtomicU32);
            assert_eq!(word.load(SeqCst) & (TID_MASK | OWNER_DIED), OWNER_DIED);
            let m2 = (base + 64) as *mut libc::pthread_mutex_t;
            assert_eq!(libc::pthread_mutex_lock(m2), libc::EOWNERDEAD);
            assert_eq!(libc::pthread_mutex_consistent(m2), 0);
            assert_eq!(libc::pthread_mutex_unlock(m2), 0);
        }
    }

    #[test]
    fn lock_words_follow_the_kernel_convention() {
        let lock = Lock::new().unwrap();
        assert!(!lock.locked());
        assert!(lock.acquire(None).unwrap());
        let tid = nix::unistd::gettid().as_raw() as u32;
        assert_eq!(lock.0.word().load(SeqCst) & TID_MASK, tid);
        assert_eq!(lock.holder(), Some(std::process::id()));
        assert!(!lock.acquire(Some(Duration::ZERO)).unwrap());
        lock.release().unwrap();
        assert_eq!(lock.0.word().load(SeqCst), 0);
        assert!(lock.release().is_err());
    }
}
