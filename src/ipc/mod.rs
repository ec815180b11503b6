//! Messages, synchronisation and shared memory between processes, as Python's
//! `multiprocessing` has them: `Pipe`, `Queue`, `Lock`, `RLock`, `Semaphore`,
//! `BoundedSemaphore`, `Event`, `Condition`, `Barrier`, `Value`, `Array`.
//!
//! Everything shared lives in anonymous `MAP_SHARED` memory ([`crate::sys::shm`]) or kernel pipes and
//! socket pairs made *before* `fork`, so the processes started afterwards share it. Blocking
//! waits use futexes on that memory, or `poll` on the descriptors; no threads.

pub mod codec;
pub mod package;
pub mod pipe;
pub mod queue;
pub mod sync;
pub mod value;

pub use package::{register_with_syntax, IpcPackage};
