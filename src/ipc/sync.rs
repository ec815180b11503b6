//! Locks, semaphores, events, conditions and barriers shared by processes.
//!
//! Each lives in a [`Shm`] page made before `fork`, and every wait sleeps in the kernel
//! ([`wait_word`]) until it is woken, its deadline passes, or a signal arrives: nothing
//! wakes up to look around.
//!
//! - **Locks** ([`RawLock`], under [`Lock`] and [`RLock`]) are robust futexes (see
//!   [`crate::sys::lock`]): the word holds the holder's thread id, and the lock is on the
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
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use rhai::FnPtr;

use crate::error::{Error, ErrorKind, Result};
use crate::process::wait::wait_word;
use crate::sys::futex::{futex_wake, SLOT};
use crate::sys::lock::{Acquired, OnDeadHolder, RawLock, LOCK_AREA};
use crate::sys::shm::Shm;
use crate::sys::Deadline;

/// The lock in slot `index` of `shm`'s lock area, whose waits reap this process's children
/// meanwhile, as every wait a script makes does.
pub(crate) fn raw_lock(shm: Rc<Shm>, index: usize) -> RawLock {
    RawLock::new(shm, index, crate::process::wait::reap_if_signalled)
}

/// Python's `multiprocessing.Lock`: any process may release it once it is held.
#[derive(Clone)]
pub(crate) struct Lock(RawLock);

impl Lock {
    /// Python's text: `<Lock(owner=4242)>` or `<Lock(owner=None)>`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "<Lock(owner={})>",
            self.holder().map_or("None".into(), |p| p.to_string())
        )
    }

    /// A new, free lock.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self(raw_lock(Shm::new(LOCK_AREA + SLOT)?, 0)))
    }

    /// Takes the lock; `false` if `timeout` passed first.
    pub(crate) fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        let got = self
            .0
            .acquire(Deadline::after(timeout), OnDeadHolder::Fail, "the Lock")?;
        Ok(got != Acquired::TimedOut)
    }

    /// Frees the lock; `ValueError` if it is not held (Python's message).
    pub(crate) fn release(&self) -> Result<()> {
        if self.0.release() {
            Ok(())
        } else {
            Err(Error::value(
                "cannot release an unlocked Lock (semaphore or lock released too many times)",
            ))
        }
    }

    /// The pid of the holder.
    pub(crate) fn holder(&self) -> Option<u32> {
        self.0.holder()
    }

    /// Whether some process holds it.
    pub(crate) fn locked(&self) -> bool {
        self.0.locked()
    }

    /// Whether this process holds it.
    pub(crate) fn is_mine(&self) -> bool {
        self.0.is_mine()
    }
}

/// Python's `multiprocessing.RLock`: the holding process may acquire it again, and must
/// release it as many times.
#[derive(Clone)]
pub(crate) struct RLock {
    raw: RawLock,
}

impl RLock {
    /// Python's text: `<RLock(owner=4242, count=2)>` or `<RLock(owner=None, count=0)>`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "<RLock(owner={}, count={})>",
            self.holder().map_or("None".into(), |p| p.to_string()),
            self.level()
        )
    }

    /// A new, free reentrant lock.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            raw: raw_lock(Shm::new(LOCK_AREA + SLOT)?, 0),
        })
    }

    fn count(&self) -> &AtomicU32 {
        self.raw.extra()
    }

    /// Takes the lock (again, if this process holds it); `false` on timeout.
    pub(crate) fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
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
    pub(crate) fn release(&self) -> Result<()> {
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
    pub(crate) fn is_mine(&self) -> bool {
        self.raw.is_mine()
    }

    /// Whether some process holds it.
    pub(crate) fn locked(&self) -> bool {
        self.raw.locked()
    }

    /// How many times its holder acquired it (0 when free).
    pub(crate) fn level(&self) -> u32 {
        if self.raw.locked() {
            self.count().load(SeqCst)
        } else {
            0
        }
    }

    /// The pid of the holder.
    pub(crate) fn holder(&self) -> Option<u32> {
        self.raw.holder()
    }
}

/// Python's `Semaphore` and `BoundedSemaphore`: a shared counter that `acquire` takes
/// one from, waiting while it is zero.
#[derive(Clone)]
pub(crate) struct Semaphore {
    shm: Rc<Shm>,
    /// `Some(max)` for a bounded semaphore.
    bound: Option<u32>,
}

// Layout: word 0 value, word 1 number of waiters.
impl Semaphore {
    /// A semaphore starting at `value`; `bounded` makes releasing past it a `ValueError`.
    pub(crate) fn new(value: u32, bounded: bool) -> Result<Self> {
        let shm = Shm::new(8)?;
        shm.u32(0).store(value, SeqCst);
        Ok(Self {
            shm,
            bound: bounded.then_some(value),
        })
    }

    /// Whether it is a `BoundedSemaphore`.
    pub(crate) fn is_bounded(&self) -> bool {
        self.bound.is_some()
    }

    /// The current value.
    pub(crate) fn value(&self) -> u32 {
        self.shm.u32(0).load(SeqCst)
    }

    /// Takes one; `false` if `deadline` passed first.
    pub(crate) fn acquire_until(&self, deadline: Deadline) -> Result<bool> {
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
            // Bounded: a waiter woken by `release` and SIGKILLed before it took the value
            // would take the one wake with it.
            let waited = wait_word(value, 0, deadline.min(crate::sys::lock::lost_wake_guard()));
            waiters.fetch_sub(1, SeqCst);
            waited?;
        }
    }

    /// Takes one; `false` on timeout.
    pub(crate) fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        self.acquire_until(Deadline::after(timeout))
    }

    /// Gives one back, waking a waiter.
    pub(crate) fn release(&self) -> Result<()> {
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
pub(crate) struct Event(Rc<Shm>);

impl Event {
    /// A new event, not set.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self(Shm::new(4)?))
    }

    /// Sets the flag and wakes every waiter.
    pub(crate) fn set(&self) {
        self.0.u32(0).store(1, SeqCst);
        futex_wake(self.0.u32(0), i32::MAX);
    }

    /// Clears the flag.
    pub(crate) fn clear(&self) {
        self.0.u32(0).store(0, SeqCst);
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        self.0.u32(0).load(SeqCst) != 0
    }

    /// Waits until the flag is set or `timeout` passes; returns the flag.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
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
pub(crate) enum AnyLock {
    /// A plain lock.
    Lock(Lock),
    /// A reentrant lock (the default).
    RLock(RLock),
}

impl AnyLock {
    /// Whether this process holds it.
    pub(crate) fn is_mine(&self) -> bool {
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
    pub(crate) fn holder(&self) -> Option<u32> {
        match self {
            Self::Lock(l) => l.holder(),
            Self::RLock(l) => l.holder(),
        }
    }

    /// Takes the lock; `false` on timeout.
    pub(crate) fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        match self {
            Self::Lock(l) => l.acquire(timeout),
            Self::RLock(l) => l.acquire(timeout),
        }
    }

    /// Releases the lock (one level of an `RLock`).
    pub(crate) fn release(&self) -> Result<()> {
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
pub(crate) struct Condition {
    lock: AnyLock,
    shm: Rc<Shm>,
}

impl Condition {
    /// A new condition over `lock`, or over a new `RLock`.
    pub(crate) fn new(lock: Option<AnyLock>) -> Result<Self> {
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
    pub(crate) fn lock(&self) -> &AnyLock {
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
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
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
    pub(crate) fn notify(&self, n: u32) -> Result<()> {
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
    pub(crate) fn notify_all(&self) -> Result<()> {
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
pub(crate) struct Barrier {
    shm: Rc<Shm>,
    parties: u32,
    timeout: Option<Duration>,
    action: Option<FnPtr>,
}

impl Barrier {
    /// A barrier for `parties` processes, running `action` when it trips, with `timeout` as
    /// the default for `wait`.
    pub(crate) fn new(
        parties: u32,
        action: Option<FnPtr>,
        timeout: Option<Duration>,
    ) -> Result<Self> {
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
    pub(crate) fn parties(&self) -> u32 {
        self.parties
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
    pub(crate) fn n_waiting(&self) -> u32 {
        if self.state() == FILLING {
            self.count().load(SeqCst)
        } else {
            0
        }
    }

    /// Whether it is broken (by `abort`, a timeout, or a failed action).
    pub(crate) fn broken(&self) -> bool {
        self.state() == BROKEN
    }

    /// Takes the internal lock. A party that died holding it may have left the state half
    /// changed: the barrier is then broken.
    fn lock(&self) -> Result<RawLock> {
        let lock = raw_lock(self.shm.clone(), 0);
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
    pub(crate) fn wait<E: From<Error>>(
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
    pub(crate) fn abort(&self) -> Result<()> {
        let lock = self.lock()?;
        self.break_barrier();
        lock.release();
        Ok(())
    }

    /// Back to the empty state; parties waiting now get a `BrokenBarrierError`.
    pub(crate) fn reset(&self) -> Result<()> {
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

    #[test]
    fn lock_words_follow_the_kernel_convention() {
        let lock = Lock::new().unwrap();
        assert!(!lock.locked());
        assert!(lock.acquire(None).unwrap());
        let tid = nix::unistd::gettid().as_raw() as u32;
        assert_eq!(
            lock.0.word().load(SeqCst) & crate::sys::futex::TID_MASK,
            tid
        );
        assert_eq!(lock.holder(), Some(std::process::id()));
        assert!(!lock.acquire(Some(Duration::ZERO)).unwrap());
        lock.release().unwrap();
        assert_eq!(lock.0.word().load(SeqCst), 0);
        assert!(lock.release().is_err());
    }
}
