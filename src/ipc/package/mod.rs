//! The Rhai surface of messages, synchronisation and shared memory: `Pipe`, `Queue`,
//! `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`,
//! `Value`, `Array`, and the `with lock { ... }` syntax.
//!
//! Glue only: converts script values and errors; the work is in the sibling modules. Split
//! by type as Rhai splits its own packages: [`pipe`], [`queue`], [`lock`] (`Lock` and
//! `RLock` registered once for both), [`events`] (`Event`, `Condition`, `Barrier`) and
//! [`value`]; here, what they share and the `with` syntax.

mod events;
mod lock;
mod pipe;
mod queue;
mod value;

use std::time::Duration;

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, FnPtr, INT};

/// Rhai's `start..end` (its own alias is private).
type ExclusiveRange = std::ops::Range<INT>;
/// Rhai's `start..=end`.
type InclusiveRange = std::ops::RangeInclusive<INT>;

use super::pipe::Connection;
use super::queue::{JoinableQueue, Queue, SimpleQueue};
use super::sync::{AnyLock, Barrier, Condition, Event, Lock, RLock, Semaphore};
use super::value::{lock_option, Code, SharedArray, SharedValue};
use crate::convert::{flag_or_seconds, seconds, type_error};
use crate::error::{Error, ErrorKind, RhaiResult};

def_package! {
    /// Messages, synchronisation and shared memory between processes, with Python's
    /// `multiprocessing` names.
    ///
    /// `with lock { ... }` is syntax, not a function: registering the package into an
    /// engine adds it too.
    pub IpcPackage(lib) {
        combine_with_exported_module!(lib, "pipe", pipe::pipe_functions);
        combine_with_exported_module!(lib, "queue", queue::queue_functions);
        lock::register_locks(lib);
        combine_with_exported_module!(lib, "semaphore", lock::semaphore_functions);
        combine_with_exported_module!(lib, "events", events::event_functions);
        combine_with_exported_module!(lib, "value", value::value_functions);
        // `for x in shared_array { ... }` walks a snapshot of the items.
        lib.set_iterable::<SharedArray>();
    } |> |engine| {
        register_with_syntax(engine);
    }
}

fn count(n: INT, what: &str) -> Result<u32, Error> {
    u32::try_from(n)
        .map_err(|_| Error::value(format!("{what} must be from 0 to {}, not {n}", u32::MAX)))
}

/// What `with` holds, released at the end of the block.
enum Held {
    Lock(Lock),
    RLock(RLock),
    Semaphore(Semaphore),
}

impl Held {
    /// Whether `guard` is one of this module's lockable types.
    fn knows(guard: &Dynamic) -> bool {
        let guard = guard.flatten_clone();
        guard.is::<Lock>()
            || guard.is::<RLock>()
            || guard.is::<Semaphore>()
            || guard.is::<Condition>()
    }

    fn take(guard: Dynamic) -> Result<Self, Error> {
        let guard = guard.flatten();
        let held = if guard.is::<Lock>() {
            Self::Lock(guard.cast::<Lock>())
        } else if guard.is::<RLock>() {
            Self::RLock(guard.cast::<RLock>())
        } else if guard.is::<Semaphore>() {
            Self::Semaphore(guard.cast::<Semaphore>())
        } else if guard.is::<Condition>() {
            match guard.cast::<Condition>().lock().clone() {
                AnyLock::Lock(lock) => Self::Lock(lock),
                AnyLock::RLock(lock) => Self::RLock(lock),
            }
        } else {
            return Err(type_error(format!(
                "`with` needs a Lock, RLock, Semaphore, BoundedSemaphore or Condition, not {}",
                crate::convert::type_name(&guard)
            )));
        };
        match &held {
            Self::Lock(lock) => {
                lock.acquire(None)?;
            }
            Self::RLock(lock) => {
                lock.acquire(None)?;
            }
            Self::Semaphore(sem) => {
                sem.acquire(None)?;
            }
        }
        Ok(held)
    }

    fn release(self) -> Result<(), Error> {
        match self {
            Self::Lock(lock) => lock.release(),
            Self::RLock(lock) => lock.release(),
            Self::Semaphore(sem) => sem.release(),
        }
    }
}

/// Registers `with EXPR { BLOCK }`: acquire the lock, semaphore or condition `EXPR`, run the
/// block, and release it however the block ends (an error then goes on up). Other types
/// take part through natives named `__enter__(x)` and `__exit__(x)`, as Python's context
/// managers do (a Pool registers them), or through `acquire()` and `release()` (a manager's
/// `Lock` proxy).
pub(crate) fn register_with_syntax(engine: &mut Engine) {
    engine
        .register_custom_syntax(["with", "$expr$", "$block$"], false, |context, inputs| {
            let guard = context.eval_expression_tree(&inputs[0])?;
            if !Held::knows(&guard) {
                return with_context_manager(context, guard.flatten_clone(), &inputs[1]);
            }
            let held = Held::take(guard)?;
            let result = context.eval_expression_tree(&inputs[1]);
            let released = held.release();
            let value = result?;
            released?;
            Ok(value)
        })
        .expect("`with` syntax registers");
}

/// `with` for a type of another room: `__enter__(x)` (or `acquire(x)`), the block, then
/// `__exit__(x)` (or `release(x)`) however the block ended. A type with neither is a
/// `TypeError`.
fn with_context_manager(
    context: &mut rhai::EvalContext,
    value: Dynamic,
    block: &rhai::Expression,
) -> RhaiResult<Dynamic> {
    let not_found = |e: &EvalAltResult, name: &str| matches!(e, EvalAltResult::ErrorFunctionNotFound(sig, _) if sig.starts_with(name));
    let mut arg = value.clone();
    let exit = match context.call_native_fn_raw("__enter__", false, &mut [&mut arg]) {
        Ok(_) => "__exit__",
        Err(e) if not_found(&e, "__enter__") => {
            let mut arg = value.clone();
            match context.call_native_fn_raw("acquire", false, &mut [&mut arg]) {
                Ok(_) => "release",
                Err(e) if not_found(&e, "acquire") => {
                    return Err(type_error(format!(
                        "`with` needs a Lock, RLock, Semaphore, BoundedSemaphore, Condition or \
                             Pool, not {}",
                        crate::convert::type_name(&value)
                    ))
                    .into());
                }
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let result = context.eval_expression_tree(block);
    let mut arg = value;
    let exited = context.call_native_fn_raw(exit, false, &mut [&mut arg]);
    let value = result?;
    exited.map(|_| value)
}

/// A timeout for the waits of queues and pipes, as Python takes them: seconds (a negative
/// number does not wait, as in Python), `()` for no limit, and, where `block_flag`, Python's
/// `block` flag (`false`: do not wait, `true`: wait without limit).
fn wait_timeout(value: &Dynamic, what: &str, block_flag: bool) -> Result<Option<Duration>, Error> {
    if block_flag {
        if let Ok(block) = value.as_bool() {
            return Ok((!block).then_some(Duration::ZERO));
        }
    }
    let negative = match (value.as_int(), value.as_float()) {
        (Ok(i), _) => i < 0,
        (_, Ok(f)) => f < 0.0,
        _ => false,
    };
    if negative {
        return Ok(Some(Duration::ZERO));
    }
    seconds(value, what)
}

/// Python's `(block, timeout)` pair: no wait at all unless `block`.
fn block_timeout(block: bool, timeout: &Dynamic, what: &str) -> Result<Option<Duration>, Error> {
    let timeout = wait_timeout(timeout, what, false)?;
    Ok(if block { timeout } else { Some(Duration::ZERO) })
}

/// A `SimpleQueue` used after `close()` fails as Python's does: with an `OSError`.
fn closed_is_os_error(error: Error) -> Error {
    if error.kind == ErrorKind::ValueError && error.message.ends_with(" is closed") {
        return Error::new(ErrorKind::OSError, error.message);
    }
    error
}
