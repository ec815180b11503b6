//! The Rhai surface of pools: `Pool`, `map`, `starmap`, `imap`, `imap_unordered`, `apply`,
//! `apply_async`, `close`, `join`, `terminate`, and the `AsyncResult` of `apply_async`.
//!
//! Glue only: converts script values and errors; the work is in [`super`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map, INT};

use super::{raise, Func, JobSpec, MapOptions, Order, Pool};
use crate::error::{Error, ErrorKind};
use crate::process::package::seconds;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

def_package! {
    /// Process pools with Python's `multiprocessing.Pool` names.
    pub PoolPackage(lib) {
        combine_with_exported_module!(lib, "pool", pool_functions);
        lib.set_iterable_result::<PoolIterator, Dynamic>();
    }
}

/// What `apply_async` returns: the call's result, once it has come.
#[derive(Clone)]
pub struct AsyncResult(Rc<Pending>);

struct Pending {
    pool: Pool,
    job: u64,
    outcome: RefCell<Option<Result<Dynamic, Map>>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.outcome.borrow().is_none() {
            self.pool.forget(self.job);
        }
    }
}

impl AsyncResult {
    fn settle(&self) {
        if self.0.outcome.borrow().is_some() || !self.0.pool.job_done(self.0.job) {
            return;
        }
        let outcome = self
            .0
            .pool
            .take_results(self.0.job)
            .map(|mut values| values.pop().unwrap_or(Dynamic::UNIT));
        *self.0.outcome.borrow_mut() = Some(outcome);
    }

    fn get(&self, ctx: &NativeCallContext, timeout: &Dynamic) -> RhaiResult<Dynamic> {
        let timeout = seconds(timeout, "the timeout")?;
        if self.0.outcome.borrow().is_none()
            && !self.0.pool.wait_job(Some(ctx), self.0.job, timeout)?
        {
            return Err(Error::new(
                ErrorKind::TimeoutError,
                "the pool task did not finish in time",
            )
            .into());
        }
        self.settle();
        match self.0.outcome.borrow().as_ref() {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(map)) => Err(raise(map.clone())),
            None => Err(Error::process("the pool task's result is gone").into()),
        }
    }

    fn ready(&self, ctx: &NativeCallContext) -> RhaiResult<bool> {
        if self.0.outcome.borrow().is_none() {
            self.0.pool.poke(Some(ctx))?;
            self.settle();
        }
        Ok(self.0.outcome.borrow().is_some())
    }
}

/// What `imap` and `imap_unordered` return: iterate it with `for`.
#[derive(Clone)]
pub struct PoolIterator(Rc<Cursor>);

struct Cursor {
    pool: Pool,
    job: u64,
    position: Cell<usize>,
    finished: Cell<bool>,
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.pool.forget(self.job);
    }
}

impl PoolIterator {
    fn next_value(&self, ctx: Option<&NativeCallContext>) -> Option<RhaiResult<Dynamic>> {
        if self.0.finished.get() {
            return None;
        }
        match self
            .0
            .pool
            .next_result(ctx, self.0.job, self.0.position.get(), None)
        {
            Ok(Some(value)) => {
                self.0.position.set(self.0.position.get() + 1);
                Some(Ok(value))
            }
            Ok(None) => {
                self.0.finished.set(true);
                None
            }
            Err(e) => {
                self.0.finished.set(true);
                Some(Err(e))
            }
        }
    }
}

/// The running side of a `for` loop over a [`PoolIterator`].
pub struct PoolIter(PoolIterator);

impl Iterator for PoolIter {
    type Item = RhaiResult<Dynamic>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_value(None)
    }
}

impl IntoIterator for PoolIterator {
    type Item = RhaiResult<Dynamic>;
    type IntoIter = PoolIter;

    fn into_iter(self) -> PoolIter {
        PoolIter(self)
    }
}

fn expect_list(value: Dynamic, what: &str) -> Result<Array, Error> {
    let type_name = crate::error::type_name(&value);
    value.try_cast::<Array>().ok_or_else(|| {
        Error::new(
            ErrorKind::TypeError,
            format!("{what} must be an array, not {type_name}"),
        )
    })
}

fn args_of(value: Dynamic) -> Result<Array, Error> {
    if value.is_unit() {
        return Ok(Array::new());
    }
    expect_list(value, "`args`")
}

fn map_options(value: Dynamic) -> Result<MapOptions, Error> {
    if value.is_unit() {
        return Ok(MapOptions::default());
    }
    let type_name = crate::error::type_name(&value);
    let Some(map) = value.try_cast::<Map>() else {
        return Err(Error::new(
            ErrorKind::TypeError,
            format!("the options must be a map, not {type_name}"),
        ));
    };
    let mut options = MapOptions::default();
    for (key, value) in map {
        match key.as_str() {
            "progress" => {
                options.progress = value.as_bool().map_err(|t| {
                    Error::new(
                        ErrorKind::TypeError,
                        format!("`progress` must be a boolean, not {t}"),
                    )
                })?;
            }
            "chunksize" => {
                let n = value.as_int().map_err(|t| {
                    Error::new(
                        ErrorKind::TypeError,
                        format!("`chunksize` must be an integer, not {t}"),
                    )
                })?;
                if n < 1 {
                    return Err(Error::value(format!(
                        "`chunksize` must be at least 1, not {n}"
                    )));
                }
                options.chunksize = Some(n as usize);
            }
            other => {
                return Err(Error::value(format!(
                    "unknown pool option `{other}` (expected `progress`, `chunksize`)"
                )))
            }
        }
    }
    Ok(options)
}

/// Python's default chunk size for `map`: about four chunks per worker.
fn default_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(workers * 4).max(1)
}

/// Checks that every item of a `starmap` list is an array of arguments.
fn check_star(list: &Array) -> Result<(), Error> {
    match list.iter().position(|item| !item.is_array()) {
        None => Ok(()),
        Some(i) => Err(Error::new(
            ErrorKind::TypeError,
            format!(
                "starmap needs an array of argument arrays: item {i} is {}",
                crate::error::type_name(&list[i])
            ),
        )),
    }
}

fn run_map(
    ctx: &NativeCallContext,
    pool: &Pool,
    f: Dynamic,
    list: Dynamic,
    opts: Dynamic,
    star: bool,
) -> RhaiResult<Array> {
    let func = Func::from_value(f, "the task function")?;
    let list = expect_list(list, "the list")?;
    if star {
        check_star(&list)?;
    }
    let options = map_options(opts)?;
    let chunksize = options
        .chunksize
        .unwrap_or_else(|| default_chunksize(list.len(), pool.size()));
    let spec = JobSpec {
        chunksize,
        order: Order::Ordered,
        eager: false,
        progress: options.progress,
        star,
    };
    let job = pool.submit(ctx, &func, list, spec)?;
    let waited = pool.wait_job(Some(ctx), job, None);
    if let Err(e) = waited {
        pool.forget(job);
        return Err(e.into());
    }
    pool.take_results(job).map_err(raise)
}

fn run_imap(
    ctx: &NativeCallContext,
    pool: &Pool,
    f: Dynamic,
    list: Dynamic,
    opts: Dynamic,
    order: Order,
) -> RhaiResult<PoolIterator> {
    let func = Func::from_value(f, "the task function")?;
    let list = expect_list(list, "the list")?;
    let options = map_options(opts)?;
    let spec = JobSpec {
        chunksize: options.chunksize.unwrap_or(1),
        order,
        eager: false,
        progress: options.progress,
        star: false,
    };
    let job = pool.submit(ctx, &func, list, spec)?;
    let iterator = PoolIterator(Rc::new(Cursor {
        pool: pool.clone(),
        job,
        position: Cell::new(0),
        finished: Cell::new(false),
    }));
    pool.poke(Some(ctx))?;
    Ok(iterator)
}

fn submit_one(
    ctx: &NativeCallContext,
    pool: &Pool,
    f: Dynamic,
    args: Dynamic,
) -> Result<AsyncResult, Error> {
    let func = Func::from_value(f, "the task function")?;
    let args = args_of(args)?;
    let spec = JobSpec {
        chunksize: 1,
        order: Order::Ordered,
        eager: true,
        progress: false,
        star: true,
    };
    let job = pool.submit(ctx, &func, vec![Dynamic::from_array(args)], spec)?;
    let result = AsyncResult(Rc::new(Pending {
        pool: pool.clone(),
        job,
        outcome: RefCell::new(None),
    }));
    pool.poke(Some(ctx))?;
    Ok(result)
}

#[export_module]
mod pool_functions {
    use super::*;

    /// A pool of worker processes: made by `Pool()` or `Pool(n)`.
    pub type Pool = super::Pool;
    /// The result of `apply_async`, to `get()` later.
    pub type AsyncResult = super::AsyncResult;
    /// The lazy results of `imap` or `imap_unordered`, for a `for` loop.
    pub type PoolIterator = super::PoolIterator;

    /// A pool of `cpu_count()` worker processes (`ForkPoolWorker-N`, daemons), forked now.
    /// Workers run the functions they are given, by name, so they know every function of
    /// the script, closures included.
    ///
    /// ```rhai
    /// fn square(x) { x * x }
    /// let pool = Pool();
    /// print(pool.map(square, [1, 2, 3]));   // [1, 4, 9]
    /// ```
    #[rhai_fn(name = "Pool", return_raw, volatile)]
    pub fn pool_new(ctx: NativeCallContext) -> RhaiResult<Pool> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(super::Pool::new(&ctx, n)?)
    }

    /// A pool of `n` worker processes (1 to 1024).
    ///
    /// Errors: `TypeError` (not an integer), `ValueError` (out of range), `ProcessError`
    /// (called in a daemon, such as a pool worker).
    #[rhai_fn(name = "Pool", return_raw, volatile)]
    pub fn pool_new_n(ctx: NativeCallContext, n: Dynamic) -> RhaiResult<Pool> {
        let type_name = crate::error::type_name(&n);
        let n = n.as_int().map_err(|_| {
            Error::new(
                ErrorKind::TypeError,
                format!("Pool(n) takes a number of processes, not {type_name}"),
            )
        })?;
        if !(1..=super::super::MAX_WORKERS as INT).contains(&n) {
            return Err(Error::value(format!(
                "a Pool needs from 1 to {} processes, not {n}",
                super::super::MAX_WORKERS
            ))
            .into());
        }
        Ok(super::Pool::new(&ctx, n as usize)?)
    }

    /// Calls `f` on every item of `list` in the workers and returns the results in order.
    /// Items go out in chunks (about four per worker). The first task error is raised here
    /// (see the guide); a worker that dies fails the call with a `ProcessError`.
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// let k = 10;
    /// print(pool.map(|x| x + k, [1, 2, 3]));   // [11, 12, 13]
    /// ```
    #[rhai_fn(name = "map", return_raw, volatile)]
    pub fn map(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
    ) -> RhaiResult<Array> {
        run_map(&ctx, pool, f, list, Dynamic::UNIT, false)
    }

    /// `map` with options: `#{ progress: true }` draws a progress bar on stderr when it is
    /// a terminal; `chunksize: n` sets the items per task.
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// print(pool.map(|x| x * 2, [1, 2, 3], #{ progress: true, chunksize: 1 }));
    /// ```
    #[rhai_fn(name = "map", return_raw, volatile)]
    pub fn map_opts(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
        opts: Dynamic,
    ) -> RhaiResult<Array> {
        run_map(&ctx, pool, f, list, opts, false)
    }

    /// Like `map`, but each item is an array of arguments.
    ///
    /// ```rhai
    /// fn add(a, b) { a + b }
    /// let pool = Pool(2);
    /// print(pool.starmap(add, [[1, 2], [3, 4]]));   // [3, 7]
    /// ```
    #[rhai_fn(name = "starmap", return_raw, volatile)]
    pub fn starmap(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
    ) -> RhaiResult<Array> {
        run_map(&ctx, pool, f, list, Dynamic::UNIT, true)
    }

    /// `starmap` with options (`progress`, `chunksize`).
    #[rhai_fn(name = "starmap", return_raw, volatile)]
    pub fn starmap_opts(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
        opts: Dynamic,
    ) -> RhaiResult<Array> {
        run_map(&ctx, pool, f, list, opts, true)
    }

    /// Calls `f` on every item, lazily: returns a `PoolIterator` that a `for` loop walks,
    /// yielding results in order as they come (one item per task unless `chunksize` says
    /// otherwise). A task's error is raised when the loop reaches it.
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// for r in pool.imap(|x| x * x, [1, 2, 3]) { print(r); }
    /// ```
    #[rhai_fn(name = "imap", return_raw, volatile)]
    pub fn imap(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
    ) -> RhaiResult<PoolIterator> {
        run_imap(&ctx, pool, f, list, Dynamic::UNIT, Order::Ordered)
    }

    /// `imap` with options (`progress`, `chunksize`).
    #[rhai_fn(name = "imap", return_raw, volatile)]
    pub fn imap_opts(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
        opts: Dynamic,
    ) -> RhaiResult<PoolIterator> {
        run_imap(&ctx, pool, f, list, opts, Order::Ordered)
    }

    /// Like `imap`, but yields results in the order they finish.
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// let total = 0;
    /// for r in pool.imap_unordered(|x| x * x, [1, 2, 3]) { total += r; }
    /// print(total);   // 14
    /// ```
    #[rhai_fn(name = "imap_unordered", return_raw, volatile)]
    pub fn imap_unordered(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
    ) -> RhaiResult<PoolIterator> {
        run_imap(&ctx, pool, f, list, Dynamic::UNIT, Order::Unordered)
    }

    /// `imap_unordered` with options (`progress`, `chunksize`).
    #[rhai_fn(name = "imap_unordered", return_raw, volatile)]
    pub fn imap_unordered_opts(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
        opts: Dynamic,
    ) -> RhaiResult<PoolIterator> {
        run_imap(&ctx, pool, f, list, opts, Order::Unordered)
    }

    /// Calls `f()` in a worker and waits for its result.
    #[rhai_fn(name = "apply", return_raw, volatile)]
    pub fn apply0(ctx: NativeCallContext, pool: &mut Pool, f: Dynamic) -> RhaiResult<Dynamic> {
        submit_one(&ctx, pool, f, Dynamic::UNIT)?.get(&ctx, &Dynamic::UNIT)
    }

    /// Calls `f` with the array `args` in a worker and waits for its result.
    ///
    /// ```rhai
    /// fn add(a, b) { a + b }
    /// let pool = Pool(1);
    /// print(pool.apply(add, [2, 3]));   // 5
    /// ```
    #[rhai_fn(name = "apply", return_raw, volatile)]
    pub fn apply(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        args: Dynamic,
    ) -> RhaiResult<Dynamic> {
        submit_one(&ctx, pool, f, args)?.get(&ctx, &Dynamic::UNIT)
    }

    /// Starts `f()` in a worker and returns an `AsyncResult` at once.
    #[rhai_fn(name = "apply_async", return_raw, volatile)]
    pub fn apply_async0(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        Ok(submit_one(&ctx, pool, f, Dynamic::UNIT)?)
    }

    /// Starts `f` with the array `args` in a worker and returns an `AsyncResult` at once:
    /// `get()` waits for the value (or raises the task's error), `get(timeout)` gives up
    /// with a `TimeoutError`, `ready()` says whether it has come.
    ///
    /// ```rhai
    /// fn slow(x) { sleep(0.05); x * 2 }
    /// let pool = Pool(2);
    /// let r = pool.apply_async(slow, [21]);
    /// print(r.get());   // 42
    /// ```
    #[rhai_fn(name = "apply_async", return_raw, volatile)]
    pub fn apply_async(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        args: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        Ok(submit_one(&ctx, pool, f, args)?)
    }

    /// No new tasks from now on; the workers end once the queued ones are done (see
    /// `join`). Closing twice is fine.
    #[rhai_fn(name = "close", return_raw, volatile)]
    pub fn close(pool: &mut Pool) -> RhaiResult<()> {
        Ok(pool.close()?)
    }

    /// Ends the workers now (SIGTERM, then SIGKILL after 2 seconds) and reaps them; calls
    /// still waiting fail with a `ProcessError`.
    #[rhai_fn(name = "terminate", return_raw, volatile)]
    pub fn terminate(pool: &mut Pool) -> RhaiResult<()> {
        Ok(pool.terminate()?)
    }

    /// Waits for the queued tasks and then for the workers to end. Only after `close()` or
    /// `terminate()` (`ValueError` otherwise).
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// let r = pool.apply_async(|| 7);
    /// pool.close();
    /// pool.join();
    /// print(r.get());   // 7
    /// ```
    #[rhai_fn(name = "join", return_raw, volatile)]
    pub fn join(ctx: NativeCallContext, pool: &mut Pool) -> RhaiResult<()> {
        Ok(pool.join(&ctx)?)
    }

    /// The number of worker processes the pool keeps.
    #[rhai_fn(get = "processes", pure)]
    pub fn processes(pool: &mut Pool) -> INT {
        pool.size() as INT
    }

    /// The pids of the workers running now.
    #[rhai_fn(get = "pids", pure)]
    pub fn pids(pool: &mut Pool) -> Array {
        pool.pids()
            .into_iter()
            .map(|p| Dynamic::from_int(p.as_raw().into()))
            .collect()
    }

    /// `<Pool processes=2 state=RUN pool_size=2>`.
    #[rhai_fn(name = "to_string", pure)]
    pub fn to_string(pool: &mut Pool) -> String {
        pool.describe()
    }

    /// Same as `to_string`.
    #[rhai_fn(name = "to_debug", pure)]
    pub fn to_debug(pool: &mut Pool) -> String {
        pool.describe()
    }

    /// Waits for the result and returns it, or raises the task's error.
    #[rhai_fn(name = "get", return_raw, volatile)]
    pub fn get(ctx: NativeCallContext, result: &mut AsyncResult) -> RhaiResult<Dynamic> {
        result.get(&ctx, &Dynamic::UNIT)
    }

    /// Waits at most `timeout` seconds for the result (`TimeoutError` after that; the task
    /// goes on, and a later `get` can still have it).
    ///
    /// ```rhai
    /// let pool = Pool(1);
    /// let r = pool.apply_async(|| { sleep(1); 1 });
    /// try { r.get(0.05); } catch (e) { print(e.kind); }   // TimeoutError
    /// ```
    #[rhai_fn(name = "get", return_raw, volatile)]
    pub fn get_timeout(
        ctx: NativeCallContext,
        result: &mut AsyncResult,
        timeout: Dynamic,
    ) -> RhaiResult<Dynamic> {
        result.get(&ctx, &timeout)
    }

    /// Whether the result (or the task's error) has come.
    #[rhai_fn(name = "ready", return_raw, volatile)]
    pub fn ready(ctx: NativeCallContext, result: &mut AsyncResult) -> RhaiResult<bool> {
        result.ready(&ctx)
    }

    /// Whether the task finished without an error (`ValueError` while it is not ready).
    #[rhai_fn(name = "successful", return_raw, volatile)]
    pub fn successful(ctx: NativeCallContext, result: &mut AsyncResult) -> RhaiResult<bool> {
        if !result.ready(&ctx)? {
            return Err(Error::value("the pool task is not ready yet").into());
        }
        Ok(matches!(result.0.outcome.borrow().as_ref(), Some(Ok(_))))
    }

    /// `<AsyncResult ready>` or `<AsyncResult pending>`.
    #[rhai_fn(name = "to_string", pure)]
    pub fn result_to_string(result: &mut AsyncResult) -> String {
        let state = if result.0.outcome.borrow().is_some() {
            "ready"
        } else {
            "pending"
        };
        format!("<AsyncResult {state}>")
    }

    /// `<PoolIterator at N>`: how many results it has yielded.
    #[rhai_fn(name = "to_string", pure)]
    pub fn iterator_to_string(it: &mut PoolIterator) -> String {
        format!("<PoolIterator at {}>", it.0.position.get())
    }

    /// The next result, waiting at most `timeout` seconds (`TimeoutError`); `()` once every
    /// result has been taken. A `for` loop is the usual way to walk the results.
    #[rhai_fn(name = "next", return_raw, volatile)]
    pub fn next_timeout(
        ctx: NativeCallContext,
        it: &mut PoolIterator,
        timeout: Dynamic,
    ) -> RhaiResult<Dynamic> {
        let timeout = seconds(&timeout, "the timeout")?;
        if it.0.finished.get() {
            return Ok(Dynamic::UNIT);
        }
        match it
            .0
            .pool
            .next_result(Some(&ctx), it.0.job, it.0.position.get(), timeout)
        {
            Ok(Some(value)) => {
                it.0.position.set(it.0.position.get() + 1);
                Ok(value)
            }
            Ok(None) => {
                it.0.finished.set(true);
                Ok(Dynamic::UNIT)
            }
            Err(e) => {
                let timed_out = matches!(&*e, EvalAltResult::ErrorRuntime(v, _)
                    if Error::kind_and_message(v).is_some_and(|(k, _)| k == "TimeoutError"));
                if !timed_out {
                    it.0.finished.set(true);
                }
                Err(e)
            }
        }
    }

    /// The next result, waiting as long as it takes; `()` at the end.
    #[rhai_fn(name = "next", return_raw, volatile)]
    pub fn next(ctx: NativeCallContext, it: &mut PoolIterator) -> RhaiResult<Dynamic> {
        next_timeout(ctx, it, Dynamic::UNIT)
    }
}
