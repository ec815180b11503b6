//! The robust lock every procscript lock is built on: a futex word in a [`Slot`] of shared
//! memory, on its holder's robust list (see [`super::futex`]), so that when the holder dies
//! (SIGKILL included) the kernel marks the word `FUTEX_OWNER_DIED` and wakes a waiter. The
//! holder's pid is kept beside the word, since the kernel clears the thread id.
//!
//! `ipc` builds `Lock`, `RLock`, `Condition`, queues and pipes on it; `output` keeps long
//! lines whole with it.

use std::rc::Rc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use super::futex::{futex_wake, pid_alive, with_list, Slot, OWNER_DIED, SLOT, TID_MASK, WAITERS};
use super::shm::Shm;
use super::{wait, Deadline};
use crate::error::{Error, Result};

/// How often a waiter checks that a lock's holder is still alive where the kernel cannot
/// watch it (no usable robust list); also the Queue's check on a writer that stopped in the
/// middle of a message.
pub(crate) const LIVENESS_CHECK: Duration = Duration::from_millis(50);

/// How many times a contended acquire checks the word before sleeping.
const SPINS: u32 = 100;

/// How long a waiter sleeps before it looks at the word again by itself. A release, or the
/// kernel's notice that a holder died, wakes exactly one waiter; if that waiter is
/// SIGKILLed in the microseconds before it takes the lock (or passes the wake on), the wake
/// dies with it and the others would sleep forever beside a free lock. Under heavy
/// contention that window is hit. One look every 30 s per waiter bounds the loss without
/// turning the wait into polling: blocked processes stay asleep, as issue 9 asks.
const LOST_WAKE_GUARD: Duration = Duration::from_secs(30);

/// The deadline of one sleep bounded by [`LOST_WAKE_GUARD`].
pub(crate) fn lost_wake_guard() -> Deadline {
    Deadline::after(Some(LOST_WAKE_GUARD))
}

/// Where lock slots start in a page: [`RawLock::new`] slot `i` takes the [`SLOT`] bytes
/// from `LOCK_AREA + SLOT * i`, so the start of the page stays free for the words of
/// whoever owns it (a Queue's counters, a Barrier's state).
pub(crate) const LOCK_AREA: usize = 2048;

/// What a waiter does when it finds the holder of a lock dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDeadHolder {
    /// Free the lock and fail this acquire (script-visible locks).
    Fail,
    /// Take the lock over silently (internal locks whose data the caller checks itself).
    TakeOver,
}

/// How an acquire ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
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
pub(crate) struct RawLock {
    slot: Slot,
    between: fn(),
}

impl RawLock {
    /// The lock in slot `index` of `shm`'s lock area (see [`LOCK_AREA`]), which must be
    /// zero to start with (free).
    ///
    /// # Panics
    /// If the slot does not fit in the mapping.
    ///
    /// `between` runs at every wake-up of a wait for it (the process room reaps children
    /// there; [`super::wait::nothing`] for none).
    pub(crate) fn new(shm: Rc<Shm>, index: usize, between: fn()) -> Self {
        Self {
            slot: Slot::new(shm, LOCK_AREA + SLOT * index),
            between,
        }
    }

    /// The futex word.
    pub(crate) fn word(&self) -> &AtomicU32 {
        self.slot.word()
    }

    /// The pid of the holder, if held (a holder that died keeps its pid here until someone
    /// takes the lock over).
    pub(crate) fn holder(&self) -> Option<u32> {
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
    pub(crate) fn locked(&self) -> bool {
        self.word().load(SeqCst) & (TID_MASK | OWNER_DIED) != 0
    }

    /// Whether this thread holds it.
    pub(crate) fn is_mine(&self) -> bool {
        let me = with_list(|list| list.tid());
        self.word().load(SeqCst) & TID_MASK == me
    }

    /// The spare word of the slot (an `RLock`'s count).
    pub(crate) fn extra(&self) -> &AtomicU32 {
        self.slot.extra()
    }

    /// Takes the lock, waiting until `deadline`.
    pub(crate) fn acquire(
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
                self.pass_on_wake();
                acquired
            }
            other => other,
        }
    }

    /// Called by a waiter that gives up (timed out, or Ctrl-C/SIGTERM): a release, or the
    /// kernel's notice of a dead holder, may have woken it and nobody else. A free lock wakes
    /// the next waiter; a lock taken meanwhile (a newcomer's fast path clears nothing, but a
    /// release cleared the waiters bit) gets the bit back, so that its release wakes them.
    fn pass_on_wake(&self) {
        let word = self.word();
        loop {
            let v = word.load(SeqCst);
            if v & TID_MASK == 0 {
                futex_wake(word, 1);
                return;
            }
            if v & WAITERS != 0
                || word
                    .compare_exchange(v, v | WAITERS, SeqCst, SeqCst)
                    .is_ok()
            {
                return;
            }
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
                wait::word(
                    word,
                    v | WAITERS,
                    deadline.min(lost_wake_guard()),
                    self.between,
                )?;
                continue;
            }
            // Without the kernel's help: look at the holder now and then.
            wait::word(
                word,
                v | WAITERS,
                deadline.min(Deadline::at(Some(next_check))),
                self.between,
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
    pub(crate) fn release(&self) -> bool {
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
            let (l1, l2) = (
                RawLock::new(shm.clone(), 0, wait::nothing),
                RawLock::new(shm.clone(), 1, wait::nothing),
            );
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
}
