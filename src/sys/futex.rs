//! Robust futexes: the kernel itself tells the waiters of a lock that its holder died.
//!
//! # The mechanism
//!
//! Linux keeps, for each thread, the address of a *robust list* (`set_robust_list(2)`): a
//! list of the futex-based locks the thread holds. When the thread ends for any reason,
//! SIGKILL included, the kernel walks that list, and for each lock whose word still holds
//! the thread's id (TID, in the low 30 bits) it sets `FUTEX_OWNER_DIED` in the word, keeps
//! `FUTEX_WAITERS`, and wakes one waiter. glibc's robust process-shared mutexes
//! (`PTHREAD_MUTEX_ROBUST`) work this way, and so do procscript's `Lock` and `RLock`: a
//! waiter sleeps in the kernel until the lock is released *or its holder is gone*, with no
//! polling of the holder's pid.
//!
//! # Sharing glibc's list
//!
//! A thread has one list head, and glibc registers one for every thread at its start (and
//! again, empty, in a fork child). Registering another would silently disable the robust
//! pthread mutexes of a program that embeds procscript, so procscript links its locks
//! *into the head glibc registered*, laid out the way glibc lays out a mutex:
//!
//! - a list entry is the address of a `next` pointer, and glibc keeps the list doubly
//!   linked, writing the `prev` pointer that sits 8 bytes before a neighbour's `next`: each
//!   lock slot has that `prev` field, and procscript links and unlinks with glibc's own
//!   steps (and musl's, which are the same);
//! - the lock word sits `futex_offset` bytes from the entry, the offset glibc stored in the
//!   head: procscript reads it with `get_robust_list(2)` and places the word accordingly
//!   ([`Layout`]; -32 on 64-bit glibc, as in a `pthread_mutex_t`);
//! - `list_op_pending` names the lock while it is being taken or let go, so a holder killed
//!   between changing the word and changing the list is still seen by the kernel.
//!
//! Where no head is registered (musl before its first robust mutex), procscript registers
//! one of its own; where the robust list cannot be used at all (a seccomp filter, an
//! unexpected offset), locks still work, and a waiter checks the holder's pid every
//! [`super::lock::LIVENESS_CHECK`] instead (see `RawLock::acquire`).
//!
//! # Entries no one else may touch
//!
//! The list entries live in shared memory, but a list belongs to one thread: an entry may be
//! in at most one list. Each slot records which thread's list holds it (`linked`), claimed
//! with a compare-and-swap before linking and cleared after unlinking. This matters because
//! Python lets any process release a `Lock`: the holder's list then still holds the entry
//! until the holder next takes or lets go of a lock ([`ThreadList::reconcile`]); meanwhile
//! a new holder takes the lock without linking it (the kernel would not see that holder
//! die), unless the thread whose list holds it has ended.

use std::cell::RefCell;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{compiler_fence, AtomicU32, AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

use std::time::Duration;

use nix::errno::Errno;

use super::shm::Shm;

/// `FUTEX_WAITERS`: someone may sleep on the word.
pub(crate) const WAITERS: u32 = 0x8000_0000;
/// `FUTEX_OWNER_DIED`: the kernel found the holder gone.
pub(crate) const OWNER_DIED: u32 = 0x4000_0000;
/// `FUTEX_TID_MASK`: the holder's thread id.
pub(crate) const TID_MASK: u32 = 0x3fff_ffff;

/// Bytes of one lock slot: two cache lines, so that the word, which waiters spin on, has a
/// line to itself while the holder writes the list fields and its pid (see [`Layout`]).
pub(crate) const SLOT: usize = 128;

/// `struct robust_list_head` of `<linux/futex.h>`.
#[repr(C)]
struct RobustListHead {
    /// The first entry, or the head itself when the list is empty.
    list: usize,
    /// Where an entry's futex word is, relative to the entry.
    futex_offset: isize,
    /// The entry being taken or let go, or 0.
    list_op_pending: usize,
}

/// A head of procscript's own, with the `prev` word glibc and musl keep before theirs.
#[repr(C)]
struct OwnHead {
    prev: usize,
    head: RobustListHead,
}

/// Where the fields of a lock slot are, in bytes from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The futex word.
    pub word: usize,
    /// The list entry (the `next` pointer); `prev` is 8 bytes before it.
    pub node: usize,
    /// Four 32-bit words: holder pid, linking thread's tid, its pid, and a spare for the
    /// lock's user (an `RLock`'s count).
    pub meta: usize,
    /// The robust list's `futex_offset` this layout serves, when the kernel can help.
    pub offset: Option<isize>,
}

/// The offset of 64-bit glibc (and the layout used without a robust list).
const GLIBC_OFFSET: isize = -32;

impl Layout {
    /// A placement of the fields in a [`SLOT`] that puts the word `offset` bytes from the
    /// entry, all fields naturally aligned and apart, preferring one where the word's cache
    /// line holds nothing else; `None` if there is none.
    pub(crate) fn for_offset(offset: isize) -> Option<Self> {
        if offset % 4 != 0 {
            return None;
        }
        let overlaps = |a: usize, alen: usize, b: usize, blen: usize| a < b + blen && b < a + alen;
        let line = |byte: usize| byte / 64;
        let mut fallback = None;
        for node in (8..SLOT).step_by(8) {
            let Some(word) = node.checked_add_signed(offset) else {
                continue;
            };
            if word + 4 > SLOT || overlaps(word, 4, node - 8, 16) {
                continue;
            }
            for meta in (0..=SLOT - 16).step_by(4) {
                if overlaps(meta, 16, word, 4) || overlaps(meta, 16, node - 8, 16) {
                    continue;
                }
                let layout = Self {
                    word,
                    node,
                    meta,
                    offset: Some(offset),
                };
                let lines = [node - 8, node + 7, meta, meta + 15];
                if lines.iter().all(|&b| line(b) != line(word)) {
                    return Some(layout);
                }
                fallback.get_or_insert(layout);
            }
        }
        fallback
    }

    fn without_robust_list() -> Self {
        Self {
            offset: None,
            ..Self::for_offset(GLIBC_OFFSET).expect("glibc's layout fits a slot")
        }
    }
}

/// This thread's robust list head and its length, `None` if it has none.
fn registered_head() -> Result<Option<(usize, usize)>, Errno> {
    let mut head: usize = 0;
    let mut len: usize = 0;
    // SAFETY: get_robust_list(0, ...) reads the calling thread's registration and writes one
    // pointer and one size into the two locals, which are valid for writes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0 as libc::c_long,
            &mut head as *mut usize,
            &mut len as *mut usize,
        )
    };
    Errno::result(rc)?;
    Ok((head != 0).then_some((head, len)))
}

/// The slot layout every process of this program uses, decided once from the first
/// thread's head (every thread and fork child of one libc has the same offset).
pub(crate) fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| match registered_head() {
        Ok(Some((head, len))) if len == std::mem::size_of::<RobustListHead>() => {
            // SAFETY: the kernel returned this thread's registered head, which its libc keeps
            // valid for the thread's life; only its offset is read.
            let offset = unsafe {
                ptr::read_volatile(ptr::addr_of!(
                    (*(head as *const RobustListHead)).futex_offset
                ))
            };
            Layout::for_offset(offset).unwrap_or_else(Layout::without_robust_list)
        }
        // No head yet: procscript registers its own, with glibc's offset.
        Ok(None) => Layout::for_offset(GLIBC_OFFSET).expect("glibc's layout fits a slot"),
        _ => Layout::without_robust_list(),
    })
}

/// One lock's slot: [`SLOT`] bytes of a shared mapping laid out by [`layout`].
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    shm: Rc<Shm>,
    /// Index of the word among the mapping's 32-bit words.
    word: usize,
    /// Index of the first metadata word among the 32-bit words.
    meta: usize,
    /// Index of the entry (`next`) among the 64-bit words; `prev` is the one before.
    next: usize,
    /// The entry's address in this process.
    address: usize,
}

impl Slot {
    /// The slot at byte `base` of `shm`.
    ///
    /// # Panics
    /// If the slot is not aligned to [`SLOT`] or does not fit the mapping (a layout bug).
    pub(crate) fn new(shm: Rc<Shm>, base: usize) -> Self {
        assert!(
            base % SLOT == 0 && base + SLOT <= shm.size(),
            "lock slot at {base} does not fit"
        );
        let layout = layout();
        let address = shm.address(base + layout.node);
        Self {
            word: (base + layout.word) / 4,
            meta: (base + layout.meta) / 4,
            next: (base + layout.node) / 8,
            address,
            shm,
        }
    }

    /// The futex word: holder's tid, [`WAITERS`], [`OWNER_DIED`].
    pub(crate) fn word(&self) -> &AtomicU32 {
        self.shm.u32(self.word)
    }

    fn meta(&self, i: usize) -> &AtomicU32 {
        self.shm.u32(self.meta + i)
    }

    /// The holder's pid (0 while unknown: between taking the word and recording it).
    pub(crate) fn owner(&self) -> &AtomicU32 {
        self.meta(0)
    }

    fn linked_tid(&self) -> &AtomicU32 {
        self.meta(1)
    }

    fn linked_pid(&self) -> &AtomicU32 {
        self.meta(2)
    }

    /// A spare word for the lock's user (an `RLock` keeps its count here).
    pub(crate) fn extra(&self) -> &AtomicU32 {
        self.meta(3)
    }

    fn next(&self) -> &AtomicU64 {
        self.shm.u64(self.next)
    }

    fn prev(&self) -> &AtomicU64 {
        self.shm.u64(self.next - 1)
    }

    /// The list entry's address in this process.
    fn node(&self) -> usize {
        self.address
    }
}

/// Whether process `pid` exists and has not ended (a zombie counts as ended).
pub(crate) fn pid_alive(pid: u32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None) {
        Err(Errno::ESRCH) => false,
        _ => !is_zombie(pid),
    }
}

/// Whether thread `tid` of process `pid` still runs.
fn thread_alive(pid: u32, tid: u32) -> bool {
    // SAFETY: tgkill with signal 0 only checks that the thread exists; it sends nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            pid as libc::c_long,
            tid as libc::c_long,
            0,
        )
    };
    let gone = rc == -1 && Errno::last() == Errno::ESRCH;
    !gone && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        == Some('Z')
}

/// Bumped in every fork child, so a thread's list state from before the fork is rebuilt.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::SeqCst);
}

/// This thread's robust list, and the procscript locks linked into it.
pub(crate) struct ThreadList {
    generation: u64,
    tid: u32,
    pid: u32,
    /// Address of the registered head (its `list` field), 0 when the kernel cannot help.
    head: usize,
    /// The slots this thread linked, kept mapped while linked (the kernel and libc read
    /// their fields).
    linked: Vec<Slot>,
}

thread_local! {
    static LIST: RefCell<Option<ThreadList>> = const { RefCell::new(None) };
    /// A head procscript registered itself, never freed: the kernel reads it when the
    /// thread ends, after thread-local values are gone.
    static OWN_HEAD: RefCell<usize> = const { RefCell::new(0) };
}

impl ThreadList {
    fn init(generation: u64) -> Self {
        static AT_FORK: Once = Once::new();
        AT_FORK.call_once(|| {
            // SAFETY: registers a handler that only bumps an atomic; it runs in the child of
            // every later fork, on the forking thread.
            unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        });
        let layout = layout();
        let head = match (layout.offset, registered_head()) {
            (Some(offset), Ok(Some((head, len))))
                if len == std::mem::size_of::<RobustListHead>() =>
            {
                // SAFETY: as in `layout`: this thread's registered head, valid for its life.
                let theirs = unsafe {
                    ptr::read_volatile(ptr::addr_of!(
                        (*(head as *const RobustListHead)).futex_offset
                    ))
                };
                if theirs == offset {
                    head
                } else {
                    0
                }
            }
            (Some(offset), Ok(None)) => register_own_head(offset),
            _ => 0,
        };
        Self {
            generation,
            tid: nix::unistd::gettid().as_raw() as u32,
            pid: nix::unistd::getpid().as_raw() as u32,
            head,
            linked: Vec::new(),
        }
    }

    /// This thread's id, as lock words hold it.
    pub(crate) fn tid(&self) -> u32 {
        self.tid
    }

    /// Whether the kernel watches this thread's locks.
    pub(crate) fn robust(&self) -> bool {
        self.head != 0
    }

    fn set_pending(&self, entry: usize) {
        if self.head != 0 {
            compiler_fence(Ordering::SeqCst);
            // SAFETY: `head` is this thread's registered head (see `init`), valid and aligned
            // for the thread's life; only this thread writes it (and the kernel reads it once
            // the thread has ended).
            unsafe {
                ptr::write_volatile(
                    ptr::addr_of_mut!((*(self.head as *mut RobustListHead)).list_op_pending),
                    entry,
                );
            }
            compiler_fence(Ordering::SeqCst);
        }
    }

    /// Names `slot` as the lock being taken or let go, until [`Self::end`].
    pub(crate) fn begin(&self, slot: &Slot) {
        self.set_pending(slot.node());
    }

    /// Ends what [`Self::begin`] started.
    pub(crate) fn end(&self) {
        self.set_pending(0);
    }

    /// After taking `slot`'s word: records this process as the holder and puts the slot on
    /// this thread's list, unless another live thread's list still holds it.
    pub(crate) fn hold(&mut self, slot: &Slot) {
        slot.owner().store(self.pid, Ordering::Relaxed);
        if self.head == 0 {
            return;
        }
        let node = slot.node();
        let mut seen = 0;
        loop {
            match slot.linked_tid().compare_exchange(
                seen,
                self.tid,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(t) if t == self.tid && self.linked.iter().any(|s| s.node() == node) => {
                    // Still on this list: released by another process and taken back.
                    return;
                }
                Err(t) => {
                    let pid = slot.linked_pid().load(Ordering::Relaxed);
                    let gone = if t == self.tid && pid == self.pid {
                        true // an earlier thread of this process with the same id
                    } else {
                        pid != 0 && !thread_alive(pid, t)
                    };
                    if !gone {
                        return; // held without the kernel's watch until that list lets go
                    }
                    seen = t; // its list ended with its thread: claim the slot
                }
            }
        }
        slot.linked_pid().store(self.pid, Ordering::Relaxed);
        // SAFETY: `head` is this thread's registered head. `node` is the entry of a slot in a
        // live mapping, 8-aligned, with its `prev` word 8 bytes before, and no other list
        // holds it (claimed above). `first` is this list's first entry: the head itself, or
        // the `next` field of a lock this thread holds, which glibc, musl and procscript all
        // place 8 bytes after a `prev` field, in memory that stays mapped while held.
        unsafe {
            let head = self.head;
            let first = ptr::read_volatile(head as *const usize);
            slot.prev().store(head as u64, Ordering::Relaxed);
            slot.next().store(first as u64, Ordering::Relaxed);
            let first_entry = first & !1;
            if first_entry != head {
                ptr::write_volatile((first_entry - 8) as *mut usize, node);
            }
            compiler_fence(Ordering::SeqCst);
            ptr::write_volatile(head as *mut usize, node);
            compiler_fence(Ordering::SeqCst);
        }
        self.linked.push(slot.clone());
    }

    /// Before letting go of `slot`'s word: takes the slot off this thread's list if it is
    /// on it.
    pub(crate) fn unhold(&mut self, slot: &Slot) {
        let node = slot.node();
        if let Some(i) = self.linked.iter().rposition(|s| s.node() == node) {
            let slot = self.linked.swap_remove(i);
            self.unlink(&slot);
        }
    }

    fn unlink(&self, slot: &Slot) {
        // SAFETY: `slot` is on this thread's list (it is in `linked`, whose slots only this
        // thread links and unlinks), so its `prev` and `next` name this list's head or
        // entries of locks this thread holds, each with a `prev` field 8 bytes before its
        // `next`, all mapped (see `hold`).
        unsafe {
            let next = slot.next().load(Ordering::Relaxed) as usize;
            let prev = slot.prev().load(Ordering::Relaxed) as usize & !1;
            let next_entry = next & !1;
            if next_entry != self.head {
                ptr::write_volatile((next_entry - 8) as *mut usize, prev);
            }
            ptr::write_volatile(prev as *mut usize, next);
            compiler_fence(Ordering::SeqCst);
        }
        slot.next().store(0, Ordering::Relaxed);
        slot.prev().store(0, Ordering::Relaxed);
        slot.linked_pid().store(0, Ordering::Relaxed);
        // Release: the next thread to claim the slot sees these fields as left here.
        slot.linked_tid().store(0, Ordering::Release);
    }

    /// Takes off this list the slots another process released (Python lets any process
    /// release a `Lock`), so that their next holders are watched again.
    pub(crate) fn reconcile(&mut self) {
        let mut i = 0;
        while i < self.linked.len() {
            if self.linked[i].word().load(Ordering::SeqCst) & TID_MASK != self.tid {
                let slot = self.linked.swap_remove(i);
                self.unlink(&slot);
            } else {
                i += 1;
            }
        }
    }
}

impl Drop for ThreadList {
    /// A thread ending with locks held: keep their mappings, since the kernel walks the list
    /// after thread-local values are gone, to mark those locks for their waiters.
    fn drop(&mut self) {
        for slot in self.linked.drain(..) {
            std::mem::forget(slot);
        }
    }
}

/// Registers a head of procscript's own for this thread (none was registered), or re-uses
/// the one this thread registered before a fork; 0 if the kernel refuses.
fn register_own_head(offset: isize) -> usize {
    OWN_HEAD.with(|own| {
        let mut own = own.borrow_mut();
        if *own == 0 {
            *own = Box::into_raw(Box::new(OwnHead {
                prev: 0,
                head: RobustListHead {
                    list: 0,
                    futex_offset: offset,
                    list_op_pending: 0,
                },
            })) as usize;
        }
        let own_head = *own as *mut OwnHead;
        // SAFETY: `own_head` points at a leaked, never freed OwnHead of this thread (made just
        // above, or before a fork and copied into this process with the rest of memory).
        unsafe {
            let head = ptr::addr_of_mut!((*own_head).head);
            (*own_head).prev = head as usize;
            (*head).list = head as usize;
            (*head).futex_offset = offset;
            (*head).list_op_pending = 0;
            let rc = libc::syscall(
                libc::SYS_set_robust_list,
                head,
                std::mem::size_of::<RobustListHead>(),
            );
            if rc == 0 {
                head as usize
            } else {
                0
            }
        }
    })
}

/// Runs `f` with this thread's list, set up on first use (and again in a fork child).
pub(crate) fn with_list<R>(f: impl FnOnce(&mut ThreadList) -> R) -> R {
    LIST.with(|cell| {
        let mut list = cell.borrow_mut();
        let generation = FORKS.load(Ordering::SeqCst);
        if list.as_ref().is_some_and(|l| l.generation != generation) {
            // A fork child: the libc emptied the list, and these entries are the parent's,
            // whose mappings this process may let go.
            if let Some(mut parents) = list.take() {
                parents.linked.clear();
            }
        }
        f(list.get_or_insert_with(|| ThreadList::init(generation)))
    })
}

/// Wakes up to `count` processes waiting on `word`.
pub(crate) fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: `word` is a valid, aligned 32-bit word; FUTEX_WAKE does not access memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            count,
            0usize,
            0usize,
            0u32,
        );
    }
}
/// One entry of `futex_waitv`'s array (struct futex_waitv of linux/futex.h).
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

const FUTEX2_SIZE_U32: u32 = 0x02;
const FUTEX2_PRIVATE: u32 = 128;

/// `futex_waitv` on `word` (shared) and `wake`, a word private to this process (the
/// signal handlers' wake word), with an absolute monotonic deadline `left` from now.
/// Returns the index of the word that was woken.
pub(crate) fn futex_waitv(
    word: &AtomicU32,
    expected: u32,
    wake: &AtomicU32,
    wake_seen: u32,
    left: Option<Duration>,
) -> std::result::Result<usize, Errno> {
    let waiters = [
        FutexWaitv {
            val: u64::from(expected),
            uaddr: word.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        },
        FutexWaitv {
            val: u64::from(wake_seen),
            uaddr: wake.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
            reserved: 0,
        },
    ];
    let timeout = match left {
        None => None,
        Some(left) => {
            let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
            let end = Duration::new(now.tv_sec() as u64, now.tv_nsec() as u32).saturating_add(left);
            Some(libc::timespec {
                tv_sec: end.as_secs().min(i64::MAX as u64 / 2) as libc::time_t,
                tv_nsec: end.subsec_nanos() as libc::c_long,
            })
        }
    };
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `waiters` is a valid array of two futex_waitv entries whose addresses are
    // aligned 32-bit words that outlive the call; the timeout is null or a live timespec on
    // CLOCK_MONOTONIC, as the call requires. futex_waitv only reads the words.
    let result = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            waiters.as_ptr(),
            waiters.len() as libc::c_uint,
            0u32,
            timeout_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    if result < 0 {
        Err(Errno::last())
    } else {
        Ok(result as usize)
    }
}

/// `FUTEX_WAIT` (shared) for at most `slice`: the fallback without `futex_waitv`.
pub(crate) fn futex_wait_slice(word: &AtomicU32, expected: u32, slice: Duration) {
    let ts = libc::timespec {
        tv_sec: slice.as_secs() as libc::time_t,
        tv_nsec: slice.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned 32-bit word for the duration of the call, and the
    // timeout points at a live timespec. FUTEX_WAIT only reads the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            0usize,
            0u32,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_put_the_word_at_the_offset() {
        for offset in [-32isize, -28, -16, -12, 8, 16, 24] {
            let l = Layout::for_offset(offset).unwrap_or_else(|| panic!("{offset}"));
            assert_eq!(l.word as isize - l.node as isize, offset);
            assert_eq!(l.node % 8, 0);
            assert!(l.meta + 16 <= SLOT && l.word + 4 <= SLOT && l.node + 8 <= SLOT);
            let line = |b: usize| b / 64;
            assert!(
                [l.node - 8, l.node + 7, l.meta, l.meta + 15]
                    .iter()
                    .all(|&b| line(b) != line(l.word)),
                "{l:?}"
            );
        }
        // glibc's: the word alone in the first cache line, the rest in the second.
        assert_eq!(
            Layout::for_offset(-32).map(|l| (l.word, l.node, l.meta)),
            Some((40, 72, 80))
        );
        assert!(Layout::for_offset(-30).is_none());
        assert!(Layout::for_offset(-4).is_none());
        assert!(Layout::for_offset(-4096).is_none());
    }

    #[test]
    fn this_libc_has_a_usable_robust_list() {
        let layout = layout();
        assert!(layout.offset.is_some(), "{layout:?}");
        assert!(with_list(|l| l.robust()));
    }
}
