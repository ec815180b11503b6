//! Messages, synchronisation and shared memory between processes, as Python's
//! `multiprocessing` has them: `Pipe`, `Queue`, `Lock`, `RLock`, `Semaphore`,
//! `BoundedSemaphore`, `Event`, `Condition`, `Barrier`, `Value`, `Array`.
//!
//! Everything shared lives in anonymous `MAP_SHARED` memory ([`crate::sys::shm`]) or kernel pipes and
//! socket pairs made *before* `fork`, so the processes started afterwards share it. Blocking
//! waits use futexes on that memory, or `poll` on the descriptors; no threads.

pub(crate) mod codec;
pub(crate) mod package;
pub(crate) mod pipe;
pub(crate) mod queue;
pub(crate) mod sync;
pub(crate) mod value;

pub use package::IpcPackage;
