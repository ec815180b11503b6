//! The pool's notice board: a little shared memory, mapped before the workers are forked,
//! that the parent and its workers read without sending a message.
//!
//! - **Started tasks.** Each worker counts the tasks it has started, in its own slot. When a
//!   worker dies, the parent compares that count with the replies it received: it then
//!   knows whether the task it had sent was running (the call fails) or was never read
//!   (the task goes to another worker, and the call succeeds). Without it, a worker killed
//!   while idle would be blamed for a task it never saw.
//! - **Cancelled jobs.** When a call fails (a task error, a dead worker) or is dropped, the
//!   parent posts the job here, with the position from which its results are no longer
//!   wanted. A worker checks before each item and skips what is cancelled, so the rest of a
//!   failed `map` stops instead of running on in the background.
//!
//! A worker that shares no memory with the parent (one on another host, later) uses
//! [`NoNotices`]: it starts and finishes every task it is sent, which is still correct.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::sys::shm::Shm;

use super::MAX_WORKERS;

/// How many cancelled jobs are remembered at once (by job number, modulo this).
const CANCELS: usize = 256;

/// The shared words: `CANCELS` pairs `(job + 1, from)`, then one started-task count per
/// worker slot.
#[derive(Clone, Debug)]
pub(crate) struct Board(Rc<Shm>);

impl Board {
    /// A zeroed board for up to [`MAX_WORKERS`] workers.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self(Shm::new(8 * (2 * CANCELS + MAX_WORKERS))?))
    }

    fn started_word(&self, slot: usize) -> &std::sync::atomic::AtomicI64 {
        self.0.i64(2 * CANCELS + slot)
    }

    /// Parent: a new worker is about to be forked into `slot`.
    pub(crate) fn reset(&self, slot: usize) {
        self.started_word(slot).store(0, Ordering::SeqCst);
    }

    /// Parent: how many tasks the worker in `slot` has started.
    pub(crate) fn started(&self, slot: usize) -> u64 {
        self.started_word(slot).load(Ordering::SeqCst) as u64
    }

    /// Parent: the results of `job` from position `from` on are not wanted any more.
    ///
    /// `from` is written before the job, and read after it: a worker that sees a half
    /// written pair can only mistake which positions are cancelled, and the parent sends a
    /// task skipped by mistake again (see [`super::scheduler`]).
    pub(crate) fn cancel(&self, job: u64, from: usize) {
        let at = 2 * (job as usize % CANCELS);
        self.0.i64(at + 1).store(from as i64, Ordering::SeqCst);
        self.0.i64(at).store(job as i64 + 1, Ordering::SeqCst);
    }

    /// Whether position `index` of `job` is cancelled.
    pub(crate) fn is_cancelled(&self, job: u64, index: usize) -> bool {
        let at = 2 * (job as usize % CANCELS);
        self.0.i64(at).load(Ordering::SeqCst) == job as i64 + 1
            && index as i64 >= self.0.i64(at + 1).load(Ordering::SeqCst)
    }
}

/// What a worker tells and asks without a message.
pub(crate) trait Notices {
    /// A task is about to start.
    fn started(&self);
    /// Whether position `index` of `job` is cancelled.
    fn cancelled(&self, job: u64, index: usize) -> bool;
}

/// The notices of a forked worker: its slot on the parent's board.
pub(crate) struct SlotNotices {
    /// The board it inherited.
    pub board: Board,
    /// Its slot.
    pub slot: usize,
}

impl Notices for SlotNotices {
    fn started(&self) {
        self.board
            .started_word(self.slot)
            .fetch_add(1, Ordering::SeqCst);
    }

    fn cancelled(&self, job: u64, index: usize) -> bool {
        self.board.is_cancelled(job, index)
    }
}

/// The notices of a worker that shares no memory with the pool: none.
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
pub(crate) struct NoNotices;

impl Notices for NoNotices {
    fn started(&self) {}

    fn cancelled(&self, _job: u64, _index: usize) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_counts_per_slot() {
        let board = Board::new().unwrap();
        let worker = SlotNotices {
            board: board.clone(),
            slot: 3,
        };
        worker.started();
        worker.started();
        assert_eq!(board.started(3), 2);
        assert_eq!(board.started(4), 0);
        board.reset(3);
        assert_eq!(board.started(3), 0);
        worker.started();
        assert_eq!(board.started(MAX_WORKERS - 1), 0);
        assert_eq!(board.started(3), 1);
    }

    #[test]
    fn cancellations_name_the_job_and_the_positions() {
        let board = Board::new().unwrap();
        assert!(!board.is_cancelled(0, 0));
        board.cancel(5, 10);
        assert!(board.is_cancelled(5, 10) && board.is_cancelled(5, 99));
        assert!(!board.is_cancelled(5, 9));
        // Another job in the same place replaces it; neither is mistaken for the other.
        let other = 5 + CANCELS as u64;
        assert!(!board.is_cancelled(other, 50));
        board.cancel(other, 0);
        assert!(board.is_cancelled(other, 0));
        assert!(!board.is_cancelled(5, 50));
        // A later, earlier failure moves the cut back.
        board.cancel(7, 4);
        board.cancel(7, 2);
        assert!(board.is_cancelled(7, 2));
        assert!(!NoNotices.cancelled(7, 2));
    }
}
