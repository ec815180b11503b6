//! `Queue`, `JoinableQueue` and `SimpleQueue`.

use super::*;

#[export_module]
#[allow(unreachable_pub)]
pub(super) mod queue_functions {
    use super::*;

    /// A queue shared by processes.
    pub type Queue = super::Queue;
    /// A queue that counts unfinished tasks.
    pub type JoinableQueue = super::JoinableQueue;
    /// A queue with only get, put, empty and close.
    pub type SimpleQueue = super::SimpleQueue;

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
    pub fn queue_put(q: &mut Queue, value: Dynamic) -> RhaiResult<()> {
        Ok(q.put(&value, None, crate::convert::script_type_name)?)
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
    pub fn queue_put_timeout(q: &mut Queue, value: Dynamic, timeout: Dynamic) -> RhaiResult<()> {
        let timeout = super::wait_timeout(&timeout, "the put timeout", true)?;
        Ok(q.put(&value, timeout, crate::convert::script_type_name)?)
    }

    /// Python's `put(v, block, timeout)`: with `block` false, does not wait at all.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn queue_put_block(
        q: &mut Queue,
        value: Dynamic,
        block: bool,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        let timeout = super::block_timeout(block, &timeout, "the put timeout")?;
        Ok(q.put(&value, timeout, crate::convert::script_type_name)?)
    }

    /// Puts a value if there is room at once, else `Full`.
    #[rhai_fn(name = "put_nowait", return_raw, pure, volatile)]
    pub fn queue_put_nowait(q: &mut Queue, value: Dynamic) -> RhaiResult<()> {
        Ok(q.put(
            &value,
            Some(Duration::ZERO),
            crate::convert::script_type_name,
        )?)
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

    // JoinableQueue

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
    pub fn joinable_put(q: &mut JoinableQueue, value: Dynamic) -> RhaiResult<()> {
        queue_put(&mut q.0, value)
    }

    /// As `Queue.put(v, timeout)`.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn joinable_put_timeout(
        q: &mut JoinableQueue,
        value: Dynamic,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        queue_put_timeout(&mut q.0, value, timeout)
    }

    /// As `Queue.put(v, block, timeout)`.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn joinable_put_block(
        q: &mut JoinableQueue,
        value: Dynamic,
        block: bool,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        queue_put_block(&mut q.0, value, block, timeout)
    }

    /// As `Queue.put_nowait(v)`.
    #[rhai_fn(name = "put_nowait", return_raw, pure, volatile)]
    pub fn joinable_put_nowait(q: &mut JoinableQueue, value: Dynamic) -> RhaiResult<()> {
        queue_put_nowait(&mut q.0, value)
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

    // SimpleQueue

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
    pub fn simple_put(q: &mut SimpleQueue, value: Dynamic) -> RhaiResult<()> {
        Ok(q.0
            .put(&value, None, crate::convert::script_type_name)
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
}
