//! `--max-procs N`: at most N live processes in the whole run, the main process aside.
//!
//! The cap holds across the tree (children, grandchildren, pool workers, commands started
//! with `Process(#{ command })`), so it is kept in a table in one anonymous `MAP_SHARED`
//! mapping, made by [`set`] before the first fork and inherited by every process. Each live
//! process holds one entry, written by the parent that starts it:
//!
//! - before the fork the parent claims a free entry (compare-and-swap from 0), so two
//!   processes starting children at the same moment can never both take the last place;
//! - after the fork it writes the child's pid into the entry;
//! - when it collects the child's exit it frees the entry.
//!
//! A parent killed before it collects its children would leave their entries taken for
//! ever, so a start that finds the table full first frees every entry whose process no
//! longer exists (`kill(pid, 0)` says `ESRCH`), and only then refuses. Each entry carries the
//! parent's pid beside the child's, so a free by a slow parent never clears an entry that
//! was reclaimed and claimed again meanwhile (short of both pids being reused at once).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// The most entries a table may have: more processes than Linux's largest pid cannot exist
/// at once, so a larger cap is the same as this one.
const MOST: usize = 1 << 22;

/// The shared table: one `u64` per place, `parent << 32 | child` (child 0 while the fork is
/// under way), 0 when free.
struct Table {
    entries: &'static [AtomicU64],
    /// Where the last claim in this process found room, to start the next search there.
    hint: AtomicUsize,
}

static TABLE: OnceLock<Table> = OnceLock::new();

/// This process's own claims: child pid → (entry index, entry value).
type Claims = HashMap<i32, (usize, u64)>;

thread_local! {
    /// This process's claims, and the pid they belong to (a forked child inherits its
    /// parent's map and must not use it).
    static MINE: RefCell<(i32, Claims)> = RefCell::new((0, HashMap::new()));
}

/// Caps the live processes of the run at `max` (0: no cap). Call it once, before the first
/// process starts: the table is shared by the processes forked after it. A second call
/// changes nothing.
///
/// # Errors
/// `OSError` if the shared table cannot be mapped.
pub(crate) fn set(max: usize) -> Result<()> {
    if max == 0 || TABLE.get().is_some() {
        return Ok(());
    }
    let max = max.min(MOST);
    let entries = crate::sys::shm::lifelong_words(max).map_err(|errno| {
        Error::os(
            format_args!(
                "mapping the --max-procs table ({} bytes)",
                max * std::mem::size_of::<AtomicU64>()
            ),
            errno,
        )
    })?;
    let _ = TABLE.set(Table {
        entries,
        hint: AtomicUsize::new(0),
    });
    Ok(())
}

/// The cap, if one is set.
pub(crate) fn cap() -> Option<usize> {
    TABLE.get().map(|t| t.entries.len())
}

/// A place claimed for a process about to be forked; freed again if dropped before
/// [`Ticket::started`] (the fork failed).
#[must_use]
pub(crate) struct Ticket {
    index: usize,
    token: u64,
}

fn table() -> Option<&'static Table> {
    TABLE.get()
}

fn my_pid() -> u64 {
    u64::from(nix::unistd::getpid().as_raw().unsigned_abs())
}

/// Whether the process an entry stands for is gone: the child when it was forked, else the
/// parent that claimed the place and may have died before forking.
fn is_gone(entry: u64) -> bool {
    let child = (entry & 0xffff_ffff) as i32;
    let pid = if child != 0 {
        child
    } else {
        (entry >> 32) as i32
    };
    nix::sys::signal::kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH)
}

impl Table {
    /// Claims a free entry for a fork by this process, scanning once round from the hint.
    fn claim(&self, token: u64) -> Option<usize> {
        let len = self.entries.len();
        let start = self.hint.load(Ordering::Relaxed) % len;
        for step in 0..len {
            let index = (start + step) % len;
            if self.entries[index]
                .compare_exchange(0, token, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.hint.store(index + 1, Ordering::Relaxed);
                return Some(index);
            }
        }
        None
    }

    /// Frees the entries of processes that no longer exist; returns how many it freed.
    fn reclaim(&self) -> usize {
        let mut freed = 0;
        for entry in self.entries {
            let value = entry.load(Ordering::Acquire);
            if value != 0
                && is_gone(value)
                && entry
                    .compare_exchange(value, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                freed += 1;
            }
        }
        freed
    }
}

/// Claims a place for a process about to be started as `name`; `None` when no cap is set.
///
/// # Errors
/// `ProcessError` when the run already has as many live processes as the cap allows.
pub(crate) fn claim(name: &str) -> Result<Option<Ticket>> {
    let Some(table) = table() else {
        return Ok(None);
    };
    let token = my_pid() << 32;
    let index = match table.claim(token) {
        Some(index) => index,
        None if table.reclaim() > 0 => match table.claim(token) {
            Some(index) => index,
            None => return Err(full(name, table)),
        },
        None => return Err(full(name, table)),
    };
    Ok(Some(Ticket { index, token }))
}

fn full(name: &str, table: &Table) -> Error {
    let max = table.entries.len();
    Error::process(format!(
        "cannot start `{name}`: the run already has {max} live processes besides the main \
         one, the most allowed (--max-procs {max}); join some first"
    ))
}

impl Ticket {
    /// Records that the fork made `pid`; the place is freed when [`collected`] is called.
    pub(crate) fn started(self, pid: Pid) {
        let ticket = std::mem::ManuallyDrop::new(self);
        let Some(table) = table() else {
            return;
        };
        let token = ticket.token | u64::from(pid.as_raw().unsigned_abs());
        // Only this process writes an entry it claimed, unless a scan found this process
        // gone, which it is not.
        let _ = table.entries[ticket.index].compare_exchange(
            ticket.token,
            token,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        let me = nix::unistd::getpid().as_raw();
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            if mine.0 != me {
                *mine = (me, HashMap::new());
            }
            mine.1.insert(pid.as_raw(), (ticket.index, token));
        });
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(table) = table() {
            let _ = table.entries[self.index].compare_exchange(
                self.token,
                0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

/// Frees the place of a child this process started and has now collected.
pub(crate) fn collected(pid: Pid) {
    let Some(table) = table() else {
        return;
    };
    let me = nix::unistd::getpid().as_raw();
    let claim = MINE.with(|mine| {
        let mut mine = mine.borrow_mut();
        if mine.0 != me {
            return None;
        }
        mine.1.remove(&pid.as_raw())
    });
    if let Some((index, token)) = claim {
        // Fails harmlessly if a scan already freed it (and someone may have claimed it since).
        let _ =
            table.entries[index].compare_exchange(token, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}
