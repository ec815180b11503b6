//! The Rhai surface of messages, synchronisation and shared memory: `Pipe`, `Queue`,
//! `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`,
//! `Value`, `Array`, and the `with lock { ... }` syntax.
//!
//! Glue only: converts script values and errors; the work is in the sibling modules.

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
use crate::convert::{flag_or_seconds, seconds};
use crate::error::{Error, ErrorKind};

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

def_package! {
    /// Messages, synchronisation and shared memory between processes, with Python's
    /// `multiprocessing` names.
    ///
    /// `with lock { ... }` is syntax, not a function: registering the package into an
    /// engine adds it too.
    pub IpcPackage(lib) {
        combine_with_exported_module!(lib, "ipc", ipc_functions);
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

/// A function that names a value's type the way scripts see it.
fn namer<'a>(ctx: &'a NativeCallContext<'a>) -> impl Fn(&str) -> String + 'a {
    |name| ctx.engine().map_type_name(name).to_string()
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
            return Err(Error::new(
                ErrorKind::TypeError,
                format!(
                    "`with` needs a Lock, RLock, Semaphore, BoundedSemaphore or Condition, not {}",
                    crate::convert::type_name(&guard)
                ),
            ));
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
                    return Err(Error::new(
                        ErrorKind::TypeError,
                        format!(
                            "`with` needs a Lock, RLock, Semaphore, BoundedSemaphore, Condition or \
                             Pool, not {}",
                            crate::convert::type_name(&value)
                        ),
                    )
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

#[export_module]
#[allow(unreachable_pub)]
mod ipc_functions {
    use super::*;

    /// One end of a `Pipe()`.
    pub type Connection = super::Connection;
    /// A queue shared by processes.
    pub type Queue = super::Queue;
    /// A queue that counts unfinished tasks.
    pub type JoinableQueue = super::JoinableQueue;
    /// A queue with only get, put, empty and close.
    pub type SimpleQueue = super::SimpleQueue;
    /// A lock shared by processes.
    pub type Lock = super::Lock;
    /// A reentrant lock shared by processes.
    pub type RLock = super::RLock;
    /// A (possibly bounded) semaphore shared by processes.
    pub type Semaphore = super::Semaphore;
    /// An event flag shared by processes.
    pub type Event = super::Event;
    /// A condition variable shared by processes.
    pub type Condition = super::Condition;
    /// A barrier for a number of processes.
    pub type Barrier = super::Barrier;
    /// An int or float in shared memory.
    pub type SharedValue = super::SharedValue;
    /// Ints or floats in shared memory.
    pub type SharedArray = super::SharedArray;

    // ---------------------------------------------------------------- Pipe

    /// Two connected ends `[a, b]`: what one end sends, the other receives, both ways.
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// let a = ends[0];
    /// let b = ends[1];
    /// let p = spawn { b.send(#{ pid: getpid(), data: [1, 2.5, "x"] }); };
    /// print(a.recv().data);   // [1, 2.5, "x"]
    /// p.join();
    /// ```
    #[rhai_fn(name = "Pipe", return_raw, volatile)]
    pub fn pipe() -> RhaiResult<Array> {
        let (a, b) = super::Connection::pair(true)?;
        Ok(vec![Dynamic::from(a), Dynamic::from(b)])
    }

    /// `Pipe(false)`: a one-way pipe `[reader, writer]`, in Python's order: the first end
    /// only receives, the second only sends. `Pipe(true)` is `Pipe()`.
    ///
    /// ```rhai
    /// let ends = Pipe(false);
    /// let reader = ends[0];
    /// let writer = ends[1];
    /// let p = spawn { writer.send("one way"); };
    /// print(reader.recv());                        // one way
    /// print(`${reader.writable} ${writer.readable}`);   // false false
    /// p.join();
    /// ```
    #[rhai_fn(name = "Pipe", return_raw, volatile)]
    pub fn pipe_duplex(duplex: bool) -> RhaiResult<Array> {
        let (a, b) = super::Connection::pair(duplex)?;
        Ok(vec![Dynamic::from(a), Dynamic::from(b)])
    }

    /// Sends a value to the other end: `()`, booleans, numbers, strings, chars, blobs, and
    /// arrays and maps of these (anything else is a `ValueError`). Waits while the other
    /// end's buffer is full; `BrokenPipeError` once the other end is closed. Several
    /// processes may send on one end at once: each message arrives whole.
    #[rhai_fn(name = "send", return_raw, pure, volatile)]
    pub fn conn_send(
        ctx: NativeCallContext,
        conn: &mut Connection,
        value: Dynamic,
    ) -> RhaiResult<()> {
        Ok(conn.send(&value, namer(&ctx))?)
    }

    /// Sends the bytes of a blob as one message, as they are (Python's `send_bytes`); the
    /// other end reads it with `recv_bytes()` (`recv()` would be a `ValueError`: bytes are
    /// not a value).
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// ends[0].send_bytes("hello".encode());
    /// print(ends[1].recv_bytes().decode());   // hello
    /// ```
    #[rhai_fn(name = "send_bytes", return_raw, pure, volatile)]
    pub fn conn_send_bytes(conn: &mut Connection, bytes: Blob) -> RhaiResult<()> {
        Ok(conn.send_bytes(&bytes)?)
    }

    /// Sends the bytes of `bytes` from `offset` to its end. A negative `offset` or one past
    /// the end is a `ValueError`, as in Python.
    #[rhai_fn(name = "send_bytes", return_raw, pure, volatile)]
    pub fn conn_send_bytes_from(conn: &mut Connection, bytes: Blob, offset: INT) -> RhaiResult<()> {
        let (start, end) = byte_range(bytes.len(), offset, None)?;
        Ok(conn.send_bytes(&bytes[start..end])?)
    }

    /// Sends `size` bytes of `bytes` from `offset`, as Python's `send_bytes(buf, offset,
    /// size)`: a negative `offset` or `size`, or a range past the end, is a `ValueError`.
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// ends[0].send_bytes("hello world".encode(), 6, 5);
    /// print(ends[1].recv_bytes().decode());   // world
    /// ```
    #[rhai_fn(name = "send_bytes", return_raw, pure, volatile)]
    pub fn conn_send_bytes_range(
        conn: &mut Connection,
        bytes: Blob,
        offset: INT,
        size: INT,
    ) -> RhaiResult<()> {
        let (start, end) = byte_range(bytes.len(), offset, Some(size))?;
        Ok(conn.send_bytes(&bytes[start..end])?)
    }

    /// Receives the next value, waiting for it. `EOFError` once the other end is closed and
    /// every message has been read.
    #[rhai_fn(name = "recv", return_raw, pure, volatile)]
    pub fn conn_recv(conn: &mut Connection) -> RhaiResult<Dynamic> {
        Ok(conn.recv(None)?)
    }

    /// Receives the next value, waiting at most `timeout` seconds (`TimeoutError`; a
    /// negative timeout does not wait, `()` waits without limit).
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// try { ends[0].recv(0.01); } catch (e) { print(e.kind); }   // TimeoutError
    /// ```
    #[rhai_fn(name = "recv", return_raw, pure, volatile)]
    pub fn conn_recv_timeout(conn: &mut Connection, timeout: Dynamic) -> RhaiResult<Dynamic> {
        let timeout = super::wait_timeout(&timeout, "the recv timeout", true)?;
        Ok(conn.recv(timeout)?)
    }

    /// Receives the next message as a blob of bytes (Python's `recv_bytes`): the bytes sent
    /// with `send_bytes`, or, for a value sent with `send`, its encoding, which
    /// `send_bytes` passes on unchanged (a relay need not decode what it forwards).
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// ends[0].send([1, 2]);
    /// let raw = ends[1].recv_bytes();   // the encoding of [1, 2]
    /// ends[1].send_bytes(raw);
    /// print(ends[0].recv());            // [1, 2]
    /// ```
    #[rhai_fn(name = "recv_bytes", return_raw, pure, volatile)]
    pub fn conn_recv_bytes(conn: &mut Connection) -> RhaiResult<Blob> {
        recv_bytes(conn, None)
    }

    /// As `recv_bytes()`, but a message longer than `maxlength` bytes is an `OSError` ("bad
    /// message length", as in Python). Python's connection is unusable after that; here the
    /// long message is dropped and the next one can be received.
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// ends[0].send_bytes(blob(100, 1));
    /// ends[0].send_bytes(blob(3, 2));
    /// try { ends[1].recv_bytes(10); } catch (e) { print(e.kind); }   // OSError
    /// print(ends[1].recv_bytes(10).len());                           // 3
    /// ```
    #[rhai_fn(name = "recv_bytes", return_raw, pure, volatile)]
    pub fn conn_recv_bytes_max(conn: &mut Connection, maxlength: INT) -> RhaiResult<Blob> {
        if maxlength < 0 {
            return Err(Error::value("negative maxlength").into());
        }
        recv_bytes(conn, Some(maxlength as u64))
    }

    /// Whether a value (or end of input) is waiting, without waiting.
    #[rhai_fn(name = "poll", return_raw, pure, volatile)]
    pub fn conn_poll(conn: &mut Connection) -> RhaiResult<bool> {
        Ok(conn.poll(Some(Duration::ZERO))?)
    }

    /// Whether a value (or end of input) arrives within `timeout` seconds. `()` waits
    /// without limit (Python's `poll(None)`); a negative timeout does not wait (as in
    /// Python, where `poll(-1)` is `poll(0)`).
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// let p = spawn { sleep(0.05); ends[1].send(1); };
    /// print(ends[0].poll(-1));   // false: does not wait
    /// print(ends[0].poll(()));   // true, once the message is there
    /// p.join();
    /// ```
    #[rhai_fn(name = "poll", return_raw, pure, volatile)]
    pub fn conn_poll_timeout(conn: &mut Connection, timeout: Dynamic) -> RhaiResult<bool> {
        let timeout = super::wait_timeout(&timeout, "the poll timeout", false)?;
        Ok(conn.poll(timeout)?)
    }

    /// Closes this end in this process (other processes' copies stay open). Closing twice
    /// is fine; using a closed end is an `OSError`.
    #[rhai_fn(name = "close", pure, volatile)]
    pub fn conn_close(conn: &mut Connection) {
        conn.close();
    }

    /// Whether `close()` was called on this end.
    #[rhai_fn(get = "closed", pure, volatile)]
    pub fn conn_closed(conn: &mut Connection) -> bool {
        conn.closed()
    }

    /// Whether this end can receive (`false` only for the second end of `Pipe(false)`).
    ///
    /// ```rhai
    /// let ends = Pipe(false);
    /// print(`${ends[0].readable} ${ends[1].readable}`);   // true false
    /// ```
    #[rhai_fn(get = "readable", pure)]
    pub fn conn_readable(conn: &mut Connection) -> bool {
        conn.readable()
    }

    /// Whether this end can send (`false` only for the first end of `Pipe(false)`).
    ///
    /// ```rhai
    /// let ends = Pipe(false);
    /// print(`${ends[0].writable} ${ends[1].writable}`);   // false true
    /// ```
    #[rhai_fn(get = "writable", pure)]
    pub fn conn_writable(conn: &mut Connection) -> bool {
        conn.writable()
    }

    /// The descriptor number (-1 once closed).
    #[rhai_fn(name = "fileno", pure, volatile)]
    pub fn conn_fileno(conn: &mut Connection) -> INT {
        conn.fileno().into()
    }

    /// `<Connection fd=5>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn conn_to_string(conn: &mut Connection) -> String {
        if conn.closed() {
            "<Connection closed>".into()
        } else {
            format!("<Connection fd={}>", conn.fileno())
        }
    }

    // ---------------------------------------------------------------- Queue

    /// An unbounded queue for many producers and consumers in different processes.
    ///
    /// ```rhai
    /// let q = Queue();
    /// let p = spawn { for i in 0..3 { q.put(i * 10); } };
    /// print(q.get() + q.get() + q.get());   // 30
    /// p.join();
    /// ```
    #[rhai_fn(name = "Queue", return_raw, volatile)]
    pub fn queue_new() -> RhaiResult<Queue> {
        Ok(super::Queue::new(0, "Queue")?)
    }

    /// A queue holding at most `maxsize` values (0: unbounded); `put` waits for room.
    #[rhai_fn(name = "Queue", return_raw, volatile)]
    pub fn queue_new_bounded(maxsize: INT) -> RhaiResult<Queue> {
        Ok(super::Queue::new(
            count(maxsize, "a Queue's maxsize")?,
            "Queue",
        )?)
    }

    /// Puts a value (the same values as `send` travel), waiting for room in a bounded queue
    /// (or a full pipe). `ValueError` after `close()`.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn queue_put(ctx: NativeCallContext, q: &mut Queue, value: Dynamic) -> RhaiResult<()> {
        Ok(q.put(&value, None, namer(&ctx))?)
    }

    /// Puts a value, taking at most `timeout` seconds: `Full` if it could not (nothing is
    /// then put). `put(v, false)` does not wait, `put(v, true)` waits without limit.
    ///
    /// ```rhai
    /// let q = Queue(1);
    /// q.put("a");
    /// try { q.put("b", 0.01); } catch (e) { print(e.kind); }   // Full
    /// ```
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn queue_put_timeout(
        ctx: NativeCallContext,
        q: &mut Queue,
        value: Dynamic,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        let timeout = super::wait_timeout(&timeout, "the put timeout", true)?;
        Ok(q.put(&value, timeout, namer(&ctx))?)
    }

    /// Python's `put(v, block, timeout)`: with `block` false, does not wait at all.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn queue_put_block(
        ctx: NativeCallContext,
        q: &mut Queue,
        value: Dynamic,
        block: bool,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        let timeout = super::block_timeout(block, &timeout, "the put timeout")?;
        Ok(q.put(&value, timeout, namer(&ctx))?)
    }

    /// Puts a value if there is room at once, else `Full`.
    #[rhai_fn(name = "put_nowait", return_raw, pure, volatile)]
    pub fn queue_put_nowait(
        ctx: NativeCallContext,
        q: &mut Queue,
        value: Dynamic,
    ) -> RhaiResult<()> {
        Ok(q.put(&value, Some(Duration::ZERO), namer(&ctx))?)
    }

    /// Takes the oldest value, waiting for one. `ValueError` after `close()`.
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn queue_get(q: &mut Queue) -> RhaiResult<Dynamic> {
        Ok(q.get(None)?)
    }

    /// Takes the oldest value, waiting at most `timeout` seconds: `Empty` if none came.
    /// `get(false)` does not wait, `get(true)` waits without limit.
    ///
    /// ```rhai
    /// let q = Queue();
    /// try { q.get(0.01); } catch (e) { print(e.kind); }   // Empty
    /// ```
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn queue_get_timeout(q: &mut Queue, timeout: Dynamic) -> RhaiResult<Dynamic> {
        let timeout = super::wait_timeout(&timeout, "the get timeout", true)?;
        Ok(q.get(timeout)?)
    }

    /// Python's `get(block, timeout)`: with `block` false, does not wait at all.
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn queue_get_block(q: &mut Queue, block: bool, timeout: Dynamic) -> RhaiResult<Dynamic> {
        let timeout = super::block_timeout(block, &timeout, "the get timeout")?;
        Ok(q.get(timeout)?)
    }

    /// Takes a value if one is waiting, else `Empty`.
    #[rhai_fn(name = "get_nowait", return_raw, pure, volatile)]
    pub fn queue_get_nowait(q: &mut Queue) -> RhaiResult<Dynamic> {
        Ok(q.get(Some(Duration::ZERO))?)
    }

    /// Whether no value is waiting (a moment later it may differ). `OSError` after
    /// `close()`, as in Python.
    #[rhai_fn(name = "empty", return_raw, pure, volatile)]
    pub fn queue_empty(q: &mut Queue) -> RhaiResult<bool> {
        Ok(q.empty()?)
    }

    /// Whether a bounded queue is full (always `false` for an unbounded one).
    ///
    /// ```rhai
    /// let q = Queue(1);
    /// print(q.full());   // false
    /// q.put(1);
    /// print(q.full());   // true
    /// ```
    #[rhai_fn(name = "full", pure, volatile)]
    pub fn queue_full(q: &mut Queue) -> bool {
        q.full()
    }

    /// About how many values are waiting.
    #[rhai_fn(name = "qsize", pure, volatile)]
    pub fn queue_qsize(q: &mut Queue) -> INT {
        q.qsize() as INT
    }

    /// The bound given to `Queue(maxsize)` (0: unbounded).
    #[rhai_fn(get = "maxsize", pure)]
    pub fn queue_maxsize(q: &mut Queue) -> INT {
        q.maxsize().into()
    }

    /// Closes the queue in this process, as Python's `close()`: `put` and `get` here are
    /// then a `ValueError` ("the Queue is closed"), `empty()` an `OSError`; other processes
    /// keep using it. Values already put stay in the queue. Closing twice is fine.
    ///
    /// ```rhai
    /// let q = Queue();
    /// q.close();
    /// try { q.put(1); } catch (e) { print(e.message); }   // the Queue is closed
    /// ```
    #[rhai_fn(name = "close", pure, volatile)]
    pub fn queue_close(q: &mut Queue) {
        q.close();
    }

    /// Does nothing: there is no feeder thread to wait for (a value is in the queue when
    /// `put` returns). Kept so that Python's `q.close(); q.join_thread()` runs unchanged.
    ///
    /// ```rhai
    /// let q = Queue();
    /// q.close();
    /// q.join_thread();
    /// ```
    #[rhai_fn(name = "join_thread", pure, volatile)]
    pub fn queue_join_thread(q: &mut Queue) {
        let _ = q;
    }

    /// Does nothing, as `join_thread()`: nothing is ever buffered in the process.
    ///
    /// ```rhai
    /// let q = Queue();
    /// q.cancel_join_thread();
    /// ```
    #[rhai_fn(name = "cancel_join_thread", pure, volatile)]
    pub fn queue_cancel_join_thread(q: &mut Queue) {
        let _ = q;
    }

    /// `<Queue qsize=2 maxsize=0>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn queue_to_string(q: &mut Queue) -> String {
        q.describe()
    }

    // ---------------------------------------------------------------- JoinableQueue

    /// A `Queue` that also counts unfinished tasks, as Python's: every `put` adds one,
    /// `task_done()` takes one away, and `join()` waits until none is left.
    ///
    /// ```rhai
    /// let q = JoinableQueue();
    /// let worker = spawn {
    ///     loop {
    ///         let job = q.get();
    ///         if job == () { q.task_done(); break; }
    ///         print(`did ${job}`);
    ///         q.task_done();
    ///     }
    /// };
    /// q.put("a");
    /// q.put("b");
    /// q.join();              // both done
    /// q.put(());
    /// worker.join();
    /// ```
    #[rhai_fn(name = "JoinableQueue", return_raw, volatile)]
    pub fn joinable_new() -> RhaiResult<JoinableQueue> {
        Ok(super::JoinableQueue(super::Queue::new(0, "JoinableQueue")?))
    }

    /// A `JoinableQueue` holding at most `maxsize` values (0: unbounded).
    #[rhai_fn(name = "JoinableQueue", return_raw, volatile)]
    pub fn joinable_new_bounded(maxsize: INT) -> RhaiResult<JoinableQueue> {
        let maxsize = count(maxsize, "a JoinableQueue's maxsize")?;
        Ok(super::JoinableQueue(super::Queue::new(
            maxsize,
            "JoinableQueue",
        )?))
    }

    /// Marks one task taken with `get` as done; `ValueError` ("task_done() called too many
    /// times") when none is unfinished.
    ///
    /// ```rhai
    /// let q = JoinableQueue();
    /// q.put("job");
    /// q.get();
    /// q.task_done();
    /// try { q.task_done(); } catch (e) { print(e.message); }   // task_done() called too many times
    /// ```
    #[rhai_fn(name = "task_done", return_raw, pure, volatile)]
    pub fn joinable_task_done(q: &mut JoinableQueue) -> RhaiResult<()> {
        Ok(q.0.task_done()?)
    }

    /// Waits until every value put has been taken and marked done with `task_done()`.
    ///
    /// ```rhai
    /// let q = JoinableQueue();
    /// let w = spawn { let n = q.get(); print(`working on ${n}`); q.task_done(); };
    /// q.put(1);
    /// q.join();   // returns after the worker's task_done()
    /// w.join();
    /// ```
    #[rhai_fn(name = "join", return_raw, pure, volatile)]
    pub fn joinable_join(q: &mut JoinableQueue) -> RhaiResult<()> {
        q.0.join(None)?;
        Ok(())
    }

    /// As `Queue.put(v)`.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn joinable_put(
        ctx: NativeCallContext,
        q: &mut JoinableQueue,
        value: Dynamic,
    ) -> RhaiResult<()> {
        queue_put(ctx, &mut q.0, value)
    }

    /// As `Queue.put(v, timeout)`.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn joinable_put_timeout(
        ctx: NativeCallContext,
        q: &mut JoinableQueue,
        value: Dynamic,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        queue_put_timeout(ctx, &mut q.0, value, timeout)
    }

    /// As `Queue.put(v, block, timeout)`.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn joinable_put_block(
        ctx: NativeCallContext,
        q: &mut JoinableQueue,
        value: Dynamic,
        block: bool,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        queue_put_block(ctx, &mut q.0, value, block, timeout)
    }

    /// As `Queue.put_nowait(v)`.
    #[rhai_fn(name = "put_nowait", return_raw, pure, volatile)]
    pub fn joinable_put_nowait(
        ctx: NativeCallContext,
        q: &mut JoinableQueue,
        value: Dynamic,
    ) -> RhaiResult<()> {
        queue_put_nowait(ctx, &mut q.0, value)
    }

    /// As `Queue.get()`.
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn joinable_get(q: &mut JoinableQueue) -> RhaiResult<Dynamic> {
        queue_get(&mut q.0)
    }

    /// As `Queue.get(timeout)`.
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn joinable_get_timeout(q: &mut JoinableQueue, timeout: Dynamic) -> RhaiResult<Dynamic> {
        queue_get_timeout(&mut q.0, timeout)
    }

    /// As `Queue.get(block, timeout)`.
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn joinable_get_block(
        q: &mut JoinableQueue,
        block: bool,
        timeout: Dynamic,
    ) -> RhaiResult<Dynamic> {
        queue_get_block(&mut q.0, block, timeout)
    }

    /// As `Queue.get_nowait()`.
    #[rhai_fn(name = "get_nowait", return_raw, pure, volatile)]
    pub fn joinable_get_nowait(q: &mut JoinableQueue) -> RhaiResult<Dynamic> {
        queue_get_nowait(&mut q.0)
    }

    /// As `Queue.empty()`.
    #[rhai_fn(name = "empty", return_raw, pure, volatile)]
    pub fn joinable_empty(q: &mut JoinableQueue) -> RhaiResult<bool> {
        queue_empty(&mut q.0)
    }

    /// As `Queue.full()`.
    #[rhai_fn(name = "full", pure, volatile)]
    pub fn joinable_full(q: &mut JoinableQueue) -> bool {
        q.0.full()
    }

    /// As `Queue.qsize()`.
    #[rhai_fn(name = "qsize", pure, volatile)]
    pub fn joinable_qsize(q: &mut JoinableQueue) -> INT {
        q.0.qsize() as INT
    }

    /// The bound given to `JoinableQueue(maxsize)` (0: unbounded).
    #[rhai_fn(get = "maxsize", pure)]
    pub fn joinable_maxsize(q: &mut JoinableQueue) -> INT {
        q.0.maxsize().into()
    }

    /// As `Queue.close()`; `task_done()` and `join()` still work.
    #[rhai_fn(name = "close", pure, volatile)]
    pub fn joinable_close(q: &mut JoinableQueue) {
        q.0.close();
    }

    /// Does nothing, as `Queue.join_thread()`.
    #[rhai_fn(name = "join_thread", pure, volatile)]
    pub fn joinable_join_thread(q: &mut JoinableQueue) {
        let _ = q;
    }

    /// Does nothing, as `Queue.cancel_join_thread()`.
    #[rhai_fn(name = "cancel_join_thread", pure, volatile)]
    pub fn joinable_cancel_join_thread(q: &mut JoinableQueue) {
        let _ = q;
    }

    /// `<JoinableQueue qsize=0 maxsize=0 unfinished=0>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn joinable_to_string(q: &mut JoinableQueue) -> String {
        let text = q.0.describe();
        format!(
            "{} unfinished={}>",
            text.trim_end_matches('>'),
            q.0.unfinished().max(0)
        )
    }

    // ---------------------------------------------------------------- SimpleQueue

    /// Python's `SimpleQueue`: an unbounded queue with only `get()`, `put(v)`, `empty()`
    /// and `close()` (no timeouts, no size).
    ///
    /// ```rhai
    /// let q = SimpleQueue();
    /// let p = spawn { q.put("hi"); };
    /// print(q.get());     // hi
    /// print(q.empty());   // true
    /// p.join();
    /// ```
    #[rhai_fn(name = "SimpleQueue", return_raw, volatile)]
    pub fn simple_new() -> RhaiResult<SimpleQueue> {
        Ok(super::SimpleQueue(super::Queue::new(0, "SimpleQueue")?))
    }

    /// Takes the oldest value, waiting for one. `OSError` after `close()`, as in Python.
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn simple_get(q: &mut SimpleQueue) -> RhaiResult<Dynamic> {
        Ok(q.0.get(None).map_err(super::closed_is_os_error)?)
    }

    /// Puts a value. `OSError` after `close()`, as in Python.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn simple_put(
        ctx: NativeCallContext,
        q: &mut SimpleQueue,
        value: Dynamic,
    ) -> RhaiResult<()> {
        Ok(q.0
            .put(&value, None, namer(&ctx))
            .map_err(super::closed_is_os_error)?)
    }

    /// Whether no value is waiting. `OSError` after `close()`.
    #[rhai_fn(name = "empty", return_raw, pure, volatile)]
    pub fn simple_empty(q: &mut SimpleQueue) -> RhaiResult<bool> {
        Ok(q.0.empty()?)
    }

    /// Closes it in this process: `get`, `put` and `empty` here are then an `OSError`.
    ///
    /// ```rhai
    /// let q = SimpleQueue();
    /// q.close();
    /// try { q.get(); } catch (e) { print(e.kind); }   // OSError
    /// ```
    #[rhai_fn(name = "close", pure, volatile)]
    pub fn simple_close(q: &mut SimpleQueue) {
        q.0.close();
    }

    /// `<SimpleQueue qsize=0 maxsize=0>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn simple_to_string(q: &mut SimpleQueue) -> String {
        q.0.describe()
    }

    // ---------------------------------------------------------------- Lock, RLock

    /// A lock for processes. If its holder dies without releasing it (killed, crashed, or
    /// ended), the kernel wakes a waiting `acquire` at once, which frees the lock and fails
    /// with a `ProcessError` naming the dead process; acquiring again then works.
    ///
    /// ```rhai
    /// let lock = Lock();
    /// with lock { print("only one process at a time here"); }
    /// ```
    #[rhai_fn(name = "Lock", return_raw, volatile)]
    pub fn lock_new() -> RhaiResult<Lock> {
        Ok(super::Lock::new()?)
    }

    /// Takes the lock, waiting as long as it takes. Acquiring a `Lock` this process already
    /// holds is a `ProcessError` (it would wait forever): use an `RLock` for that.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn lock_acquire(lock: &mut Lock) -> RhaiResult<bool> {
        Ok(lock.acquire(None)?)
    }

    /// Takes the lock, waiting at most `timeout` seconds; returns whether it did.
    /// `acquire(false)` does not wait, as Python's `acquire(block=False)`.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn lock_acquire_timeout(lock: &mut Lock, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(lock.acquire(super::flag_or_seconds(&timeout, "the acquire timeout")?)?)
    }

    /// Frees the lock (any process may); `ValueError` if it is not held.
    #[rhai_fn(name = "release", return_raw, pure, volatile)]
    pub fn lock_release(lock: &mut Lock) -> RhaiResult<()> {
        Ok(lock.release()?)
    }

    /// Whether some process holds the lock (Python's `locked()`).
    ///
    /// ```rhai
    /// let lock = Lock();
    /// print(lock.locked());   // false
    /// with lock { print(lock.locked()); }   // true
    /// ```
    #[rhai_fn(name = "locked", pure, volatile)]
    pub fn lock_locked(lock: &mut Lock) -> bool {
        lock.locked()
    }

    /// The pid of the process holding the lock, `()` when it is free.
    #[rhai_fn(get = "holder", pure, volatile)]
    pub fn lock_holder(lock: &mut Lock) -> Dynamic {
        lock.holder()
            .map_or(Dynamic::UNIT, |p| Dynamic::from_int(p.into()))
    }

    /// `<Lock(owner=4242)>` or `<Lock(owner=None)>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn lock_to_string(lock: &mut Lock) -> String {
        format!(
            "<Lock(owner={})>",
            lock.holder().map_or("None".into(), |p| p.to_string())
        )
    }

    /// A reentrant lock: the process holding it may acquire it again, and releases it as
    /// many times. Its holder dying is handled as for `Lock`.
    #[rhai_fn(name = "RLock", return_raw, volatile)]
    pub fn rlock_new() -> RhaiResult<RLock> {
        Ok(super::RLock::new()?)
    }

    /// Takes the lock (again, if this process holds it).
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn rlock_acquire(lock: &mut RLock) -> RhaiResult<bool> {
        Ok(lock.acquire(None)?)
    }

    /// Takes the lock, waiting at most `timeout` seconds; returns whether it did.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn rlock_acquire_timeout(lock: &mut RLock, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(lock.acquire(super::flag_or_seconds(&timeout, "the acquire timeout")?)?)
    }

    /// Releases one level; `AssertionError` if this process does not hold it (as Python's
    /// `multiprocessing.RLock`).
    ///
    /// ```rhai
    /// let r = RLock();
    /// r.acquire();
    /// r.release();
    /// try { r.release(); } catch (e) { print(e.kind); }   // AssertionError
    /// ```
    #[rhai_fn(name = "release", return_raw, pure, volatile)]
    pub fn rlock_release(lock: &mut RLock) -> RhaiResult<()> {
        Ok(lock.release()?)
    }

    /// Whether some process holds the lock.
    ///
    /// ```rhai
    /// let r = RLock();
    /// with r { with r { print(r.locked()); } }   // true
    /// print(r.locked());                         // false
    /// ```
    #[rhai_fn(name = "locked", pure, volatile)]
    pub fn rlock_locked(lock: &mut RLock) -> bool {
        lock.locked()
    }

    /// The pid of the process holding the lock, `()` when it is free.
    #[rhai_fn(get = "holder", pure, volatile)]
    pub fn rlock_holder(lock: &mut RLock) -> Dynamic {
        lock.holder()
            .map_or(Dynamic::UNIT, |p| Dynamic::from_int(p.into()))
    }

    /// `<RLock(owner=4242, count=2)>` or `<RLock(owner=None, count=0)>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn rlock_to_string(lock: &mut RLock) -> String {
        format!(
            "<RLock(owner={}, count={})>",
            lock.holder().map_or("None".into(), |p| p.to_string()),
            lock.level()
        )
    }

    // ---------------------------------------------------------------- Semaphores

    /// A semaphore starting at 1.
    #[rhai_fn(name = "Semaphore", return_raw, volatile)]
    pub fn semaphore_new() -> RhaiResult<Semaphore> {
        Ok(super::Semaphore::new(1, false)?)
    }

    /// A semaphore starting at `n`: at most `n` holders at once.
    ///
    /// ```rhai
    /// let slots = Semaphore(2);
    /// with slots { print("one of at most two"); }
    /// ```
    #[rhai_fn(name = "Semaphore", return_raw, volatile)]
    pub fn semaphore_new_n(n: INT) -> RhaiResult<Semaphore> {
        Ok(super::Semaphore::new(
            count(n, "a Semaphore's value")?,
            false,
        )?)
    }

    /// A bounded semaphore starting at 1.
    #[rhai_fn(name = "BoundedSemaphore", return_raw, volatile)]
    pub fn bounded_new() -> RhaiResult<Semaphore> {
        Ok(super::Semaphore::new(1, true)?)
    }

    /// A semaphore starting at `n` that may never go above `n`: releasing it more often
    /// than it was acquired is a `ValueError`.
    #[rhai_fn(name = "BoundedSemaphore", return_raw, volatile)]
    pub fn bounded_new_n(n: INT) -> RhaiResult<Semaphore> {
        Ok(super::Semaphore::new(
            count(n, "a BoundedSemaphore's value")?,
            true,
        )?)
    }

    /// Takes one, waiting while the value is 0.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn semaphore_acquire(sem: &mut Semaphore) -> RhaiResult<bool> {
        Ok(sem.acquire(None)?)
    }

    /// Takes one, waiting at most `timeout` seconds; returns whether it did.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn semaphore_acquire_timeout(sem: &mut Semaphore, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(sem.acquire(super::flag_or_seconds(&timeout, "the acquire timeout")?)?)
    }

    /// Gives one back (`ValueError` past a bounded semaphore's initial value).
    #[rhai_fn(name = "release", return_raw, pure, volatile)]
    pub fn semaphore_release(sem: &mut Semaphore) -> RhaiResult<()> {
        Ok(sem.release()?)
    }

    /// The current value.
    #[rhai_fn(name = "get_value", pure, volatile)]
    pub fn semaphore_value(sem: &mut Semaphore) -> INT {
        sem.value().into()
    }

    /// `<Semaphore(value=2)>` or `<BoundedSemaphore(value=2)>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn semaphore_to_string(sem: &mut Semaphore) -> String {
        let name = if sem.is_bounded() {
            "BoundedSemaphore"
        } else {
            "Semaphore"
        };
        format!("<{name}(value={})>", sem.value())
    }

    // ---------------------------------------------------------------- Event

    /// A flag processes can wait for; starts cleared.
    ///
    /// ```rhai
    /// let ready = Event();
    /// let p = spawn { ready.wait(); print("go"); };
    /// ready.set();
    /// p.join();
    /// ```
    #[rhai_fn(name = "Event", return_raw, volatile)]
    pub fn event_new() -> RhaiResult<Event> {
        Ok(super::Event::new()?)
    }

    /// Sets the flag and wakes every waiter.
    #[rhai_fn(name = "set", pure, volatile)]
    pub fn event_set(event: &mut Event) {
        event.set();
    }

    /// Clears the flag.
    #[rhai_fn(name = "clear", pure, volatile)]
    pub fn event_clear(event: &mut Event) {
        event.clear();
    }

    /// Whether the flag is set.
    #[rhai_fn(name = "is_set", pure, volatile)]
    pub fn event_is_set(event: &mut Event) -> bool {
        event.is_set()
    }

    /// Waits until the flag is set; returns `true`.
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn event_wait(event: &mut Event) -> RhaiResult<bool> {
        Ok(event.wait(None)?)
    }

    /// Waits at most `timeout` seconds; returns the flag (`false` if the time ran out).
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn event_wait_timeout(event: &mut Event, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(event.wait(seconds(&timeout, "the wait timeout")?)?)
    }

    /// `<Event set>` or `<Event unset>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn event_to_string(event: &mut Event) -> String {
        format!("<Event {}>", if event.is_set() { "set" } else { "unset" })
    }

    // ---------------------------------------------------------------- Condition

    /// A condition variable with its own `RLock`: hold the lock (`with cond { ... }` or
    /// `acquire`), then `wait` for another process's `notify`.
    ///
    /// ```rhai
    /// let cond = Condition();
    /// let box = Value(0);
    /// let p = spawn { with cond { box.value = 42; cond.notify(); } };
    /// with cond { while box.value == 0 { cond.wait(); } }
    /// print(box.value);   // 42
    /// p.join();
    /// ```
    #[rhai_fn(name = "Condition", return_raw, volatile)]
    pub fn condition_new() -> RhaiResult<Condition> {
        Ok(super::Condition::new(None)?)
    }

    /// A condition variable over an existing `Lock` or `RLock` (Python's
    /// `Condition(lock)`); `()` makes a new `RLock`.
    ///
    /// ```rhai
    /// let lock = Lock();
    /// let cond = Condition(lock);
    /// with cond { print(lock.locked()); }   // true
    /// ```
    #[rhai_fn(name = "Condition", return_raw, volatile)]
    pub fn condition_new_with(lock: Dynamic) -> RhaiResult<Condition> {
        let lock = if lock.is_unit() {
            None
        } else if let Some(l) = lock.clone().try_cast::<Lock>() {
            Some(AnyLock::Lock(l))
        } else if let Some(l) = lock.clone().try_cast::<RLock>() {
            Some(AnyLock::RLock(l))
        } else {
            return Err(Error::new(
                ErrorKind::TypeError,
                format!(
                    "Condition(lock) takes a Lock, an RLock or (), not {}",
                    crate::convert::type_name(&lock)
                ),
            )
            .into());
        };
        Ok(super::Condition::new(lock)?)
    }

    /// Takes the condition's lock.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn condition_acquire(cond: &mut Condition) -> RhaiResult<bool> {
        Ok(cond.lock().acquire(None)?)
    }

    /// Takes the condition's lock, waiting at most `timeout` seconds.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn condition_acquire_timeout(cond: &mut Condition, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(cond
            .lock()
            .acquire(super::flag_or_seconds(&timeout, "the acquire timeout")?)?)
    }

    /// Releases the condition's lock.
    #[rhai_fn(name = "release", return_raw, pure, volatile)]
    pub fn condition_release(cond: &mut Condition) -> RhaiResult<()> {
        Ok(cond.lock().release()?)
    }

    /// Lets the lock go, waits for a notify, and takes the lock back; returns `true`. A
    /// notify wakes exactly the waiters it counts, but what they wait for may have changed
    /// again before they run: wait in a loop that checks it (or use `wait_for`).
    /// `AssertionError` without the lock.
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn condition_wait(cond: &mut Condition) -> RhaiResult<bool> {
        Ok(cond.wait(None)?)
    }

    /// As `wait()`, at most `timeout` seconds; `false` if the time ran out before a notify
    /// for this waiter.
    ///
    /// ```rhai
    /// let cond = Condition();
    /// with cond { print(cond.wait(0.01)); }   // false
    /// ```
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn condition_wait_timeout(cond: &mut Condition, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(cond.wait(seconds(&timeout, "the wait timeout")?)?)
    }

    /// Waits until `predicate` (a function returning a boolean) is true; returns `true`.
    #[rhai_fn(name = "wait_for", return_raw, pure, volatile)]
    pub fn condition_wait_for(
        ctx: NativeCallContext,
        cond: &mut Condition,
        predicate: FnPtr,
    ) -> RhaiResult<bool> {
        wait_for(&ctx, cond, predicate, None)
    }

    /// Waits at most `timeout` seconds until `predicate` is true; returns its last result.
    #[rhai_fn(name = "wait_for", return_raw, pure, volatile)]
    pub fn condition_wait_for_timeout(
        ctx: NativeCallContext,
        cond: &mut Condition,
        predicate: FnPtr,
        timeout: Dynamic,
    ) -> RhaiResult<bool> {
        let timeout = seconds(&timeout, "the wait timeout")?;
        wait_for(&ctx, cond, predicate, timeout)
    }

    /// Wakes exactly one waiting process, if any waits (the lock must be held, else
    /// `AssertionError`).
    ///
    /// ```rhai
    /// let cond = Condition();
    /// let woken = Value(0);
    /// let asleep = Semaphore(0);
    /// let ps = [];
    /// for i in 0..3 {
    ///     ps.push(spawn { with cond { asleep.release(); if cond.wait(30) { woken.add(1); } } });
    /// }
    /// for i in 0..3 { asleep.acquire(); }   // all three are waiting
    /// with cond { cond.notify(); }
    /// sleep(0.2);
    /// print(woken.value);   // 1: exactly one woke
    /// with cond { cond.notify_all(); }
    /// for p in ps { p.join(); }
    /// print(woken.value);   // 3
    /// ```
    #[rhai_fn(name = "notify", return_raw, pure, volatile)]
    pub fn condition_notify(cond: &mut Condition) -> RhaiResult<()> {
        Ok(cond.notify(1)?)
    }

    /// Wakes exactly `n` waiting processes (or all, if fewer wait).
    #[rhai_fn(name = "notify", return_raw, pure, volatile)]
    pub fn condition_notify_n(cond: &mut Condition, n: INT) -> RhaiResult<()> {
        Ok(cond.notify(count(n, "the number to notify")?)?)
    }

    /// Wakes every waiting process.
    #[rhai_fn(name = "notify_all", return_raw, pure, volatile)]
    pub fn condition_notify_all(cond: &mut Condition) -> RhaiResult<()> {
        Ok(cond.notify_all()?)
    }

    /// `<Condition(owner=None)>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn condition_to_string(cond: &mut Condition) -> String {
        format!(
            "<Condition(owner={})>",
            cond.lock()
                .holder()
                .map_or("None".into(), |p| p.to_string())
        )
    }

    // ---------------------------------------------------------------- Barrier

    /// A barrier: `wait()` returns once `parties` processes have called it.
    ///
    /// ```rhai
    /// let b = Barrier(2);
    /// let p = spawn { b.wait(); };
    /// b.wait();
    /// p.join();
    /// ```
    #[rhai_fn(name = "Barrier", return_raw, volatile)]
    pub fn barrier_new(parties: INT) -> RhaiResult<Barrier> {
        barrier_with(parties, Dynamic::UNIT, Dynamic::UNIT)
    }

    /// A barrier whose `action` (a function or closure, or `()`) runs in one of the
    /// parties, the last to arrive, each time it trips, before any party goes on.
    ///
    /// ```rhai
    /// let rounds = Value(0);
    /// let b = Barrier(2, || rounds.add(1));
    /// let p = spawn { b.wait(); b.wait(); };
    /// b.wait();
    /// b.wait();
    /// p.join();
    /// print(rounds.value);   // 2
    /// ```
    #[rhai_fn(name = "Barrier", return_raw, volatile)]
    pub fn barrier_new_action(parties: INT, action: Dynamic) -> RhaiResult<Barrier> {
        barrier_with(parties, action, Dynamic::UNIT)
    }

    /// A barrier with an `action` (or `()`) and a default `timeout` for `wait`, in seconds
    /// (`()`: none).
    ///
    /// ```rhai
    /// let b = Barrier(2, (), 0.05);
    /// try { b.wait(); } catch (e) { print(e.kind); }   // BrokenBarrierError
    /// print(b.broken);                                 // true
    /// ```
    #[rhai_fn(name = "Barrier", return_raw, volatile)]
    pub fn barrier_new_timeout(
        parties: INT,
        action: Dynamic,
        timeout: Dynamic,
    ) -> RhaiResult<Barrier> {
        barrier_with(parties, action, timeout)
    }

    /// Waits for all parties; returns this one's arrival index (0 for the first). If the
    /// barrier's timeout passes first, the barrier breaks: `BrokenBarrierError` here and in
    /// every party waiting.
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn barrier_wait(ctx: NativeCallContext, barrier: &mut Barrier) -> RhaiResult<INT> {
        barrier_wait_for(&ctx, barrier, None)
    }

    /// Waits at most `timeout` seconds (`()`: the barrier's own timeout); when it passes,
    /// the barrier breaks, as in Python: `BrokenBarrierError` here and in every party
    /// waiting, until `reset()`.
    ///
    /// ```rhai
    /// let b = Barrier(3);
    /// let p = spawn { try { b.wait(30); } catch (e) { print(`child: ${e.kind}`); } };
    /// try { b.wait(0.2); } catch (e) { print(e.kind); }   // BrokenBarrierError
    /// p.join();                                          // child: BrokenBarrierError
    /// ```
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn barrier_wait_timeout(
        ctx: NativeCallContext,
        barrier: &mut Barrier,
        timeout: Dynamic,
    ) -> RhaiResult<INT> {
        let timeout = seconds(&timeout, "the wait timeout")?;
        barrier_wait_for(&ctx, barrier, timeout)
    }

    /// Breaks the barrier: the parties waiting now, and every later `wait`, get a
    /// `BrokenBarrierError` (until `reset()`).
    ///
    /// ```rhai
    /// let b = Barrier(2);
    /// b.abort();
    /// try { b.wait(); } catch (e) { print(e.kind); }   // BrokenBarrierError
    /// ```
    #[rhai_fn(name = "abort", return_raw, pure, volatile)]
    pub fn barrier_abort(barrier: &mut Barrier) -> RhaiResult<()> {
        Ok(barrier.abort()?)
    }

    /// Empties the barrier for a new round: parties waiting now get a
    /// `BrokenBarrierError`, and a broken barrier works again.
    ///
    /// ```rhai
    /// let b = Barrier(1);
    /// b.abort();
    /// b.reset();
    /// print(b.broken);   // false
    /// print(b.wait());   // 0
    /// ```
    #[rhai_fn(name = "reset", return_raw, pure, volatile)]
    pub fn barrier_reset(barrier: &mut Barrier) -> RhaiResult<()> {
        Ok(barrier.reset()?)
    }

    /// Whether the barrier is broken (by `abort()`, a timeout, or an action that failed).
    ///
    /// ```rhai
    /// let b = Barrier(1, || throw "the action failed");
    /// try { b.wait(); } catch (e) { print(e); }   // the action failed
    /// print(b.broken);                            // true
    /// try { b.wait(); } catch (e) { print(e.kind); }   // BrokenBarrierError
    /// ```
    #[rhai_fn(get = "broken", pure, volatile)]
    pub fn barrier_broken(barrier: &mut Barrier) -> bool {
        barrier.broken()
    }

    /// How many parties it waits for.
    #[rhai_fn(get = "parties", pure)]
    pub fn barrier_parties(barrier: &mut Barrier) -> INT {
        barrier.parties().into()
    }

    /// How many are waiting now.
    #[rhai_fn(get = "n_waiting", pure, volatile)]
    pub fn barrier_n_waiting(barrier: &mut Barrier) -> INT {
        barrier.n_waiting().into()
    }

    /// `<Barrier parties=3 waiting=1>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn barrier_to_string(barrier: &mut Barrier) -> String {
        if barrier.broken() {
            return format!("<Barrier parties={} broken>", barrier.parties());
        }
        format!(
            "<Barrier parties={} waiting={}>",
            barrier.parties(),
            barrier.n_waiting()
        )
    }

    // ---------------------------------------------------------------- Value, Array

    /// A shared int or float (the kind of `init` fixes it: a 64-bit int, typecode `"q"`, or
    /// a double, `"d"`), seen by every process forked after it was made, with an `RLock`
    /// for longer updates (`get_lock()`).
    ///
    /// ```rhai
    /// let hits = Value(0);
    /// let ps = [];
    /// for i in 0..4 { ps.push(spawn { for j in 0..100 { hits.add(1); } }); }
    /// for p in ps { p.join(); }
    /// print(hits.value);   // 400
    /// ```
    #[rhai_fn(name = "Value", return_raw, volatile)]
    pub fn value_new(init: Dynamic) -> RhaiResult<SharedValue> {
        value_with(init, None, None, true)
    }

    /// `Value(typecode, init)`: a value of one of Python's typecodes (`"c"` a byte, `"b"`,
    /// `"B"`, `"h"`, `"H"`, `"i"`, `"I"`, `"l"`, `"L"`, `"q"`, `"Q"` ints of 1 to 8 bytes,
    /// `"f"`, `"d"` floats); or `Value(init, options)`. Options: `#{ lock: false }` for no
    /// lock, `#{ lock: l }` to use the `Lock` or `RLock` `l`.
    ///
    /// ```rhai
    /// let v = Value("i", 7);
    /// let c = Value("c", "x");
    /// let d = Value(1.5, #{ lock: false });
    /// print(v.value);   // 7
    /// print(c.value == "x".to_blob());   // true
    /// print(d.typecode);   // d
    /// ```
    #[rhai_fn(name = "Value", return_raw, volatile)]
    pub fn value_new_2(first: Dynamic, second: Dynamic) -> RhaiResult<SharedValue> {
        if second.is_map() {
            return value_with(first, None, Some(second), true);
        }
        value_with(first, Some(second), None, true)
    }

    /// `Value(typecode, init, options)`.
    ///
    /// ```rhai
    /// let my_lock = Lock();
    /// let v = Value("d", 0.5, #{ lock: my_lock });
    /// with v.get_lock() { v.value *= 4; }
    /// print(v.value);   // 2.0
    /// ```
    #[rhai_fn(name = "Value", return_raw, volatile)]
    pub fn value_new_3(code: Dynamic, init: Dynamic, options: Dynamic) -> RhaiResult<SharedValue> {
        value_with(code, Some(init), Some(options), true)
    }

    /// `RawValue(typecode)`: a shared value of that typecode, zero, with no lock (as
    /// `Value(..., #{ lock: false })`).
    ///
    /// ```rhai
    /// let v = RawValue("h");
    /// v.value = -3;
    /// print(v.value);   // -3
    /// try { v.get_lock(); } catch (e) { print(e.kind); }   // AttributeError
    /// ```
    #[rhai_fn(name = "RawValue", return_raw, volatile)]
    pub fn raw_value_new(code: Dynamic) -> RhaiResult<SharedValue> {
        value_with(code, None, None, false)
    }

    /// `RawValue(typecode, init)`: a shared value with no lock.
    #[rhai_fn(name = "RawValue", return_raw, volatile)]
    pub fn raw_value_new_init(code: Dynamic, init: Dynamic) -> RhaiResult<SharedValue> {
        value_with(code, Some(init), None, false)
    }

    /// The current value (for typecode `"c"`, a one-byte blob).
    #[rhai_fn(get = "value", pure, volatile)]
    pub fn value_get(v: &mut SharedValue) -> Dynamic {
        v.get()
    }

    /// Stores a value: an int into an int typecode, an int or a float into a float one, a
    /// one-byte blob or string, a char or an int 0-255 into `"c"`. Outside the typecode's
    /// range it is a `ValueError`.
    ///
    /// ```rhai
    /// let v = Value("B", 0);
    /// try { v.value = 256; } catch (e) { print(e.kind); }   // ValueError
    /// ```
    #[rhai_fn(set = "value", return_raw, pure, volatile)]
    pub fn value_set(v: &mut SharedValue, value: Dynamic) -> RhaiResult<()> {
        Ok(v.set(&value)?)
    }

    /// Adds `n` in one atomic step and returns the new value; a result outside the
    /// typecode's range is a `ValueError` (and nothing changes).
    #[rhai_fn(name = "add", return_raw, pure, volatile)]
    pub fn value_add(v: &mut SharedValue, n: Dynamic) -> RhaiResult<Dynamic> {
        Ok(v.add(&n)?)
    }

    /// Stores `new` if the value is `old`, in one atomic step; returns whether it did.
    #[rhai_fn(name = "compare_exchange", return_raw, pure, volatile)]
    pub fn value_compare_exchange(
        v: &mut SharedValue,
        old: Dynamic,
        new: Dynamic,
    ) -> RhaiResult<bool> {
        Ok(v.compare_exchange(&old, &new)?)
    }

    /// The typecode, such as `"i"` (`"q"` for `Value(1)`, `"d"` for `Value(1.0)`).
    ///
    /// ```rhai
    /// print(Value(1).typecode);        // q
    /// print(Value("H", 1).typecode);   // H
    /// ```
    #[rhai_fn(get = "typecode", pure)]
    pub fn value_typecode(v: &mut SharedValue) -> String {
        v.code().name().to_string()
    }

    /// The lock that goes with this value (an `RLock`, or the `Lock` given as the `lock`
    /// option), for updates of more than one step. `AttributeError` for a value with no
    /// lock.
    ///
    /// ```rhai
    /// let v = Value(0);
    /// let p = spawn { with v.get_lock() { v.value += 1; } };
    /// p.join();
    /// print(v.value);   // 1
    /// ```
    #[rhai_fn(name = "get_lock", return_raw, pure)]
    pub fn value_get_lock(v: &mut SharedValue) -> RhaiResult<Dynamic> {
        Ok(any_lock(v.lock()?))
    }

    /// The same shared memory without its lock (Python's `get_obj()`): a raw value.
    ///
    /// ```rhai
    /// let v = Value("i", 5);
    /// let raw = v.get_obj();
    /// raw.value = 6;
    /// print(v.value);   // 6
    /// ```
    #[rhai_fn(name = "get_obj", return_raw, pure)]
    pub fn value_get_obj(v: &mut SharedValue) -> RhaiResult<SharedValue> {
        Ok(v.obj()?)
    }

    /// `Value(42)`, `Value('i', 42)`, `RawValue('i', 42)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn value_to_string(v: &mut SharedValue) -> String {
        v.repr()
    }

    /// A shared array: `Array(n)` is `n` int zeros; `Array(list)` holds the numbers of
    /// `list` (doubles if any is a float, else 64-bit ints).
    ///
    /// ```rhai
    /// let a = Array([1, 2, 3]);
    /// let p = spawn { a[0] = 10; };
    /// p.join();
    /// print(a.to_array());   // [10, 2, 3]
    /// ```
    #[rhai_fn(name = "Array", return_raw, volatile)]
    pub fn array_new(init: Dynamic) -> RhaiResult<SharedArray> {
        array_with(None, init, None, true)
    }

    /// `Array(typecode, size_or_items)`: `size` zeros, or the items of an array, a range,
    /// or (for `"c"`) a blob or string; or `Array(size_or_list, options)`. Options:
    /// `#{ lock: false }`, `#{ lock: l }`.
    ///
    /// ```rhai
    /// let a = Array("i", 5);
    /// let d = Array("d", [0.5, 1, 2]);
    /// let s = Array("c", "hello");
    /// a[1..3] = [7, 8];
    /// print(a[0..4]);   // [0, 7, 8, 0]
    /// print(d[-1]);     // 2.0
    /// print(s.value == "hello".to_blob());   // true
    /// ```
    #[rhai_fn(name = "Array", return_raw, volatile)]
    pub fn array_new_2(first: Dynamic, second: Dynamic) -> RhaiResult<SharedArray> {
        if second.is_map() {
            return array_with(None, first, Some(second), true);
        }
        array_with(Some(first), second, None, true)
    }

    /// `Array(typecode, size_or_items, options)`.
    ///
    /// ```rhai
    /// let a = Array("b", [1, -2, 3], #{ lock: false });
    /// print(a);   // RawArray('b', [1, -2, 3])
    /// ```
    #[rhai_fn(name = "Array", return_raw, volatile)]
    pub fn array_new_3(code: Dynamic, init: Dynamic, options: Dynamic) -> RhaiResult<SharedArray> {
        array_with(Some(code), init, Some(options), true)
    }

    /// `RawArray(typecode, size_or_items)`: a shared array with no lock.
    ///
    /// ```rhai
    /// let a = RawArray("H", [1, 2, 3]);
    /// print(a[1..3]);   // [2, 3]
    /// ```
    #[rhai_fn(name = "RawArray", return_raw, volatile)]
    pub fn raw_array_new(code: Dynamic, init: Dynamic) -> RhaiResult<SharedArray> {
        array_with(Some(code), init, None, false)
    }

    /// Item `i` (negative counts from the end); out of range is an `IndexError`.
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn array_get(a: &mut SharedArray, i: INT) -> RhaiResult<Dynamic> {
        Ok(a.get(i)?)
    }

    /// Stores item `i`.
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn array_set(a: &mut SharedArray, i: INT, value: Dynamic) -> RhaiResult<()> {
        Ok(a.set(i, &value)?)
    }

    /// The items `start..end` as Python's `a[start:end]`: negative bounds count from the
    /// end, bounds past the ends are clipped. An array (a blob for `"c"`), read holding
    /// the lock.
    ///
    /// ```rhai
    /// let a = Array("i", [1, 2, 3, 4, 5]);
    /// print(a[1..3]);    // [2, 3]
    /// print(a[-2..5]);   // [4, 5]
    /// ```
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn array_get_range(a: &mut SharedArray, range: ExclusiveRange) -> RhaiResult<Dynamic> {
        Ok(a.slice(range.start, range.end)?)
    }

    /// The items `start..=end` (a negative `end` counts from the end, `-1` the last).
    ///
    /// ```rhai
    /// let a = Array("i", [1, 2, 3, 4]);
    /// print(a[1..=2]);     // [2, 3]
    /// print(a[-2..=-1]);   // [3, 4]
    /// ```
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn array_get_range_inclusive(
        a: &mut SharedArray,
        range: InclusiveRange,
    ) -> RhaiResult<Dynamic> {
        Ok(a.slice(*range.start(), inclusive_end(*range.end(), a.len()))?)
    }

    /// Stores as many values as the slice `start..end` has items (else `ValueError`), in
    /// one step under the lock.
    ///
    /// ```rhai
    /// let a = Array("i", 4);
    /// a[0..2] = [5, 6];
    /// a[-2..4] = [7, 8];
    /// print(a.to_array());   // [5, 6, 7, 8]
    /// ```
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn array_set_range(
        a: &mut SharedArray,
        range: ExclusiveRange,
        values: Dynamic,
    ) -> RhaiResult<()> {
        Ok(a.set_slice(range.start, range.end, &values)?)
    }

    /// Stores the slice `start..=end`.
    ///
    /// ```rhai
    /// let a = Array("i", 3);
    /// a[0..=1] = [4, 5];
    /// print(a.to_array());   // [4, 5, 0]
    /// ```
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn array_set_range_inclusive(
        a: &mut SharedArray,
        range: InclusiveRange,
        values: Dynamic,
    ) -> RhaiResult<()> {
        let end = inclusive_end(*range.end(), a.len());
        Ok(a.set_slice(*range.start(), end, &values)?)
    }

    /// Adds `n` to item `i` in one atomic step; returns the new value.
    #[rhai_fn(name = "add", return_raw, pure, volatile)]
    pub fn array_add(a: &mut SharedArray, i: INT, n: Dynamic) -> RhaiResult<Dynamic> {
        Ok(a.add(i, &n)?)
    }

    /// The number of items.
    #[rhai_fn(name = "len", pure)]
    pub fn array_len(a: &mut SharedArray) -> INT {
        a.len() as INT
    }

    /// The typecode, such as `"i"`.
    ///
    /// ```rhai
    /// print(Array("f", 2).typecode);   // f
    /// ```
    #[rhai_fn(get = "typecode", pure)]
    pub fn array_typecode(a: &mut SharedArray) -> String {
        a.code().name().to_string()
    }

    /// A plain (unshared) array with the items' current values.
    #[rhai_fn(name = "to_array", pure, volatile)]
    pub fn array_to_array(a: &mut SharedArray) -> Array {
        a.to_vec()
    }

    /// A char array's bytes up to the first zero byte (Python's `.value`).
    ///
    /// ```rhai
    /// let s = Array("c", 8);
    /// s.value = "hi";
    /// print(s.value.len());   // 2
    /// print(s.raw.len());     // 8
    /// ```
    #[rhai_fn(get = "value", return_raw, pure, volatile)]
    pub fn array_value(a: &mut SharedArray) -> RhaiResult<Blob> {
        Ok(a.bytes_value()?)
    }

    /// Stores bytes (a blob or a string) at the start of a char array, then a zero byte if
    /// there is room; more bytes than the array holds is a `ValueError`.
    #[rhai_fn(set = "value", return_raw, pure, volatile)]
    pub fn array_set_value(a: &mut SharedArray, value: Dynamic) -> RhaiResult<()> {
        Ok(a.set_bytes(&value, true)?)
    }

    /// All the bytes of a char array (Python's `.raw`).
    #[rhai_fn(get = "raw", return_raw, pure, volatile)]
    pub fn array_raw(a: &mut SharedArray) -> RhaiResult<Blob> {
        Ok(a.bytes_raw()?)
    }

    /// Stores bytes at the start of a char array, without a zero byte after them.
    #[rhai_fn(set = "raw", return_raw, pure, volatile)]
    pub fn array_set_raw(a: &mut SharedArray, value: Dynamic) -> RhaiResult<()> {
        Ok(a.set_bytes(&value, false)?)
    }

    /// The lock that goes with this array (`AttributeError` for one with no lock).
    #[rhai_fn(name = "get_lock", return_raw, pure)]
    pub fn array_get_lock(a: &mut SharedArray) -> RhaiResult<Dynamic> {
        Ok(any_lock(a.lock()?))
    }

    /// The same shared memory without its lock (Python's `get_obj()`).
    ///
    /// ```rhai
    /// let a = Array("i", 3);
    /// let raw = a.get_obj();
    /// raw[0] = 9;
    /// print(a[0]);   // 9
    /// ```
    #[rhai_fn(name = "get_obj", return_raw, pure)]
    pub fn array_get_obj(a: &mut SharedArray) -> RhaiResult<SharedArray> {
        Ok(a.obj()?)
    }

    /// `Array([1, 2, 3])`, `Array('i', [1, 2, 3])`, `Array('c', b'hi')`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn array_to_string(a: &mut SharedArray) -> String {
        a.repr()
    }
}

fn wait_for(
    ctx: &NativeCallContext,
    cond: &Condition,
    predicate: FnPtr,
    timeout: Option<Duration>,
) -> RhaiResult<bool> {
    let deadline = crate::sys::Deadline::after(timeout);
    loop {
        let result = predicate.call_within_context::<Dynamic>(ctx, ())?;
        let type_name = crate::convert::type_name(&result);
        let done = result.as_bool().map_err(|_| {
            Error::new(
                ErrorKind::TypeError,
                format!("a wait_for predicate must return a boolean, not {type_name}"),
            )
        })?;
        if done || deadline.passed() {
            return Ok(done);
        }
        cond.wait(deadline.left())?;
    }
}

fn barrier_with(parties: INT, action: Dynamic, timeout: Dynamic) -> RhaiResult<Barrier> {
    let parties = count(parties, "a Barrier's number of parties")?;
    let type_name = crate::convert::type_name(&action);
    let action = if action.is_unit() {
        None
    } else {
        Some(action.try_cast::<FnPtr>().ok_or_else(|| {
            Error::new(
                ErrorKind::TypeError,
                format!("a Barrier's action must be a function or (), not {type_name}"),
            )
        })?)
    };
    let timeout = seconds(&timeout, "a Barrier's timeout")?;
    Ok(Barrier::new(parties, action, timeout)?)
}

fn barrier_wait_for(
    ctx: &NativeCallContext,
    barrier: &Barrier,
    timeout: Option<Duration>,
) -> RhaiResult<INT> {
    let index = barrier.wait(timeout, |action: &FnPtr| {
        action.call_within_context::<Dynamic>(ctx, ()).map(|_| ())
    })?;
    Ok(index.into())
}

/// A `Lock` or `RLock` as a script value.
fn any_lock(lock: &AnyLock) -> Dynamic {
    match lock {
        AnyLock::Lock(l) => Dynamic::from(l.clone()),
        AnyLock::RLock(l) => Dynamic::from(l.clone()),
    }
}

/// A typecode argument.
fn typecode(code: &Dynamic) -> Result<Code, Error> {
    match code.clone().into_immutable_string() {
        Ok(name) => Code::parse(&name),
        Err(_) => Err(Error::new(
            ErrorKind::TypeError,
            format!(
                "a typecode is a string such as \"i\" or \"d\", not {}",
                crate::convert::type_name(code)
            ),
        )),
    }
}

/// The lock of a synchronized value from its options map (`None`: no options); `raw`
/// values take no options and have no lock.
fn lock_from(options: Option<Dynamic>, raw: bool) -> Result<Option<AnyLock>, Error> {
    if raw {
        return Ok(None);
    }
    let Some(options) = options else {
        return lock_option(None);
    };
    let type_name = crate::convert::type_name(&options);
    let map = options.try_cast::<rhai::Map>().ok_or_else(|| {
        Error::new(
            ErrorKind::TypeError,
            format!("the options of a Value or Array are a map such as #{{ lock: false }}, not {type_name}"),
        )
    })?;
    if let Some(key) = map.keys().find(|k| k.as_str() != "lock") {
        return Err(Error::new(
            ErrorKind::TypeError,
            format!("unknown option `{key}` (a Value or Array takes `lock`)"),
        ));
    }
    lock_option(map.get("lock"))
}

fn value_with(
    first: Dynamic,
    init: Option<Dynamic>,
    options: Option<Dynamic>,
    synchronized: bool,
) -> RhaiResult<SharedValue> {
    let lock = lock_from(options, !synchronized)?;
    if first.is_string() || !synchronized {
        let code = typecode(&first)?;
        return Ok(SharedValue::typed(code, init.as_ref(), lock)?);
    }
    if init.is_some() {
        return Err(Error::new(
            ErrorKind::TypeError,
            format!(
                "Value(typecode, init) takes a typecode string first, not {}",
                crate::convert::type_name(&first)
            ),
        )
        .into());
    }
    Ok(SharedValue::new(&first, lock)?)
}

/// The items an `Array(typecode, ...)` starts with, or its size.
enum Init {
    Size(INT),
    Items(Vec<Dynamic>),
}

fn array_init(code: Code, init: Dynamic) -> Result<Init, Error> {
    if let Ok(n) = init.as_int() {
        return Ok(Init::Size(n));
    }
    let too_long = |n: i128| {
        Error::value(format!(
            "a shared Array's length must be from 0 to 2^28, not {n}"
        ))
    };
    if let Some(range) = init.clone().try_cast::<ExclusiveRange>() {
        let len = (i128::from(range.end) - i128::from(range.start)).max(0);
        if len > 1 << 28 {
            return Err(too_long(len));
        }
        return Ok(Init::Items(range.map(Dynamic::from_int).collect()));
    }
    if let Some(range) = init.clone().try_cast::<InclusiveRange>() {
        let len = (i128::from(*range.end()) - i128::from(*range.start()) + 1).max(0);
        if len > 1 << 28 {
            return Err(too_long(len));
        }
        return Ok(Init::Items(range.map(Dynamic::from_int).collect()));
    }
    if init.is_blob() || (code.is_char() && init.is_string()) {
        let bytes: Blob = if init.is_blob() {
            init.into_blob().unwrap_or_default()
        } else {
            init.into_immutable_string()
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default()
        };
        return Ok(Init::Items(
            bytes
                .into_iter()
                .map(|b| Dynamic::from_int(b.into()))
                .collect(),
        ));
    }
    let type_name = crate::convert::type_name(&init);
    init.try_cast::<Array>().map(Init::Items).ok_or_else(|| {
        Error::new(
            ErrorKind::TypeError,
            format!("Array(typecode, ...) takes a size, an array, a range, a blob or a string, not {type_name}"),
        )
    })
}

fn array_with(
    code: Option<Dynamic>,
    init: Dynamic,
    options: Option<Dynamic>,
    synchronized: bool,
) -> RhaiResult<SharedArray> {
    let lock = lock_from(options, !synchronized)?;
    if let Some(code) = code {
        let code = typecode(&code)?;
        return Ok(match array_init(code, init)? {
            Init::Size(n) => SharedArray::zeros(code, n, lock)?,
            Init::Items(items) => SharedArray::from_items(code, &items, lock)?,
        });
    }
    let type_name = crate::convert::type_name(&init);
    if let Ok(n) = init.as_int() {
        return Ok(SharedArray::plain_zeros(n, lock)?);
    }
    if init.is_string() {
        // `Array("i")`: a typecode without a size.
        typecode(&init)?;
        return Err(Error::new(
            ErrorKind::TypeError,
            "Array(typecode) needs a size or items too: Array(\"i\", 10)",
        )
        .into());
    }
    match init.try_cast::<Array>() {
        Some(list) => Ok(SharedArray::from_list(&list, lock)?),
        None => Err(Error::new(
            ErrorKind::TypeError,
            format!("Array(...) takes a length or a list of numbers, not {type_name}"),
        )
        .into()),
    }
}

/// The exclusive end of the inclusive slice `..=end`, Python-style for a negative `end`.
fn inclusive_end(end: INT, len: usize) -> INT {
    if end < 0 {
        end.saturating_add(len as INT).saturating_add(1)
    } else {
        end.saturating_add(1)
    }
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

/// Python's checks of `send_bytes(buf, offset, size)`: the byte range to send.
fn byte_range(len: usize, offset: INT, size: Option<INT>) -> Result<(usize, usize), Error> {
    if offset < 0 {
        return Err(Error::value("offset is negative"));
    }
    let start = offset as u64;
    if (len as u64) < start {
        return Err(Error::value("buffer length < offset"));
    }
    let end = match size {
        None => len as u64,
        Some(size) if size < 0 => return Err(Error::value("size is negative")),
        Some(size) => {
            let end = start.saturating_add(size as u64);
            if (len as u64) < end {
                return Err(Error::value("buffer length < offset + size"));
            }
            end
        }
    };
    Ok((start as usize, end as usize))
}

/// `recv_bytes`, with Python's error for a message over `maxlength`.
fn recv_bytes(conn: &Connection, maxlength: Option<u64>) -> RhaiResult<Blob> {
    match conn.recv_bytes(maxlength)? {
        Ok(bytes) => Ok(bytes),
        Err(n) => Err(Error::new(
            ErrorKind::OSError,
            format!(
                "bad message length: the message has {n} bytes, more than maxlength {} \
                 (it was dropped)",
                maxlength.unwrap_or(0)
            ),
        )
        .into()),
    }
}
