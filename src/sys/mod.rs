//! The kernel primitives the rooms above wait and lock with: shared mappings ([`shm`]),
//! futex words and robust lists ([`futex`]), the robust lock built on them ([`lock`]), the
//! two sleeps every wait is made of ([`wait`]), [`Deadline`], and the calls that take or
//! give descriptors as bare numbers ([`fd`]).
//!
//! A leaf beside `signal`: it knows nothing of processes, scripts or packages, so that
//! `output` (the line lock), `process` (the reaper's waits) and `ipc` (locks, queues, pipes)
//! can all build on it. With the reaper, fork and exec, it is one of the few rooms that
//! talk to the kernel without a safe wrapper.

pub(crate) mod deadline;
pub(crate) mod fd;
pub(crate) mod futex;
pub(crate) mod lock;
pub(crate) mod shm;
pub(crate) mod wait;

pub(crate) use deadline::Deadline;
