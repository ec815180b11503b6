//! The Rhai surface of pools: `Pool`, `map`, `starmap`, `imap`, `imap_unordered`,
//! `map_async`, `starmap_async`, `apply`, `apply_async`, `close`, `join`, `terminate`,
//! `with pool { }`, and the `AsyncResult` and `PoolIterator` they return.
//!
//! Glue only: converts script values and errors; the work is in [`super`].

use std::cell::Cell;
use std::rc::Rc;

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, INT};

use super::func::Func;
use super::remote::{Host, RemoteHost};
use super::result::Callbacks;
use super::{AsyncResult, JobSpec, Order, Pool, PoolOptions};
use crate::command::remote::Remote;
use crate::convert::{must_be, seconds, type_error};
use crate::convert::{type_name, NotItems};
use crate::error::{Error, RhaiResult};

/// The most items a range may give a pool call (each item travels in a message).
pub(crate) const MAX_ITEMS: u64 = 10_000_000;

def_package! {
    /// Process pools with Python's `multiprocessing.Pool` names.
    pub PoolPackage(lib) {
        combine_with_exported_module!(lib, "pool", pool_functions);
        lib.set_iterable_result::<PoolIterator, Dynamic>();
    }
}

/// What `imap` and `imap_unordered` return: iterate it with `for`.
#[derive(Clone)]
pub(crate) struct PoolIterator(Rc<Cursor>);

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
pub(crate) struct PoolIter(PoolIterator);

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

/// The items of anything a `for` loop can walk: an array, a range (`0..10`, `0..=9`,
/// `range(0, 10)`, `range(0, 10, 2)`), a string (its characters), a blob (its bytes as
/// ints), or any other type with an iterator; at most [`MAX_ITEMS`].
pub(crate) fn items_of(ctx: &NativeCallContext, value: Dynamic, what: &str) -> RhaiResult<Array> {
    let shown = type_name(&value);
    crate::convert::items(ctx, value, MAX_ITEMS, false).map_err(|e| match e {
        NotItems::TooMany(count) => Error::value(format!(
            "a list of {count} items is too long for a pool call (at most {MAX_ITEMS}): cut it \
             into parts"
        ))
        .into(),
        NotItems::NotIterable => type_error(format!(
            "{what} must be an array, a range, a string or another iterable, not {shown}"
        ))
        .into(),
        NotItems::Failed(e) => e,
    })
}

/// A call's options map, with the keys that call takes.
#[derive(Default)]
struct CallOptions {
    progress: bool,
    chunksize: Option<usize>,
    callbacks: Callbacks,
}

fn function_option(
    ctx: &NativeCallContext,
    key: &str,
    value: Dynamic,
) -> Result<Option<FnPtr>, Error> {
    if value.is_unit() {
        return Ok(None);
    }
    if !value.is::<FnPtr>() {
        return Err(must_be(format_args!("`{key}`"), "a function", &value));
    }
    let f = value.cast::<FnPtr>();
    let func = Func {
        name: f.fn_name().to_string(),
        curry: f.curry().to_vec(),
    };
    func.check_arity(ctx, [(1, None)])
        .map_err(|e| type_error(format!("`{key}`: {}", e.message)))?;
    Ok(Some(f))
}

fn call_options(
    ctx: &NativeCallContext,
    value: Dynamic,
    allowed: &[&str],
) -> Result<CallOptions, Error> {
    let mut options = CallOptions::default();
    if value.is_unit() {
        return Ok(options);
    }
    if !value.is::<Map>() {
        return Err(must_be("the options", "a map", &value));
    }
    let map = value.cast::<Map>();
    for (key, value) in map {
        let key = key.as_str();
        if !allowed.contains(&key) {
            let expected: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
            return Err(Error::value(format!(
                "unknown pool option `{key}` (expected {})",
                expected.join(", ")
            )));
        }
        match key {
            "progress" => {
                options.progress = value
                    .as_bool()
                    .map_err(|_| must_be("`progress`", "a boolean", &value))?;
            }
            "chunksize" => {
                let n = value
                    .as_int()
                    .map_err(|_| must_be("`chunksize`", "an integer", &value))?;
                if n < 1 {
                    return Err(Error::value(format!(
                        "`chunksize` must be at least 1, not {n}"
                    )));
                }
                options.chunksize = Some(n as usize);
            }
            "callback" => options.callbacks.callback = function_option(ctx, key, value)?,
            "error_callback" => {
                options.callbacks.error_callback = function_option(ctx, key, value)?;
            }
            _ => unreachable!("only allowed keys get here"),
        }
    }
    Ok(options)
}

const MAP_OPTIONS: &[&str] = &["progress", "chunksize"];
const ASYNC_MAP_OPTIONS: &[&str] = &["progress", "chunksize", "callback", "error_callback"];
const APPLY_OPTIONS: &[&str] = &["callback", "error_callback"];

/// Python's default chunk size for `map`: about four chunks per worker.
fn default_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(workers * 4).max(1)
}

fn task_function(f: Dynamic) -> Result<Func, Error> {
    Func::from_value(f, "the task function")
}

/// The items of a `starmap`: each an array (or other iterable) of arguments.
fn star_items(ctx: &NativeCallContext, list: Array) -> RhaiResult<Array> {
    list.into_iter()
        .enumerate()
        .map(|(i, item)| {
            if item.is_array() {
                return Ok(item);
            }
            items_of(ctx, item, &format!("item {i} of the starmap list")).map(Dynamic::from_array)
        })
        .collect()
}

/// Checks the function against the number of arguments each item gives.
fn check_items(
    ctx: &NativeCallContext,
    func: &Func,
    items: &Array,
    star: bool,
) -> Result<(), Error> {
    if items.is_empty() {
        return Ok(());
    }
    if !star {
        return func.check_arity(ctx, [(1, None)]);
    }
    let mut seen = Vec::new();
    let mut given = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let n = item.as_array_ref().map_or(0, |a| a.len());
        if !seen.contains(&n) {
            seen.push(n);
            given.push((n, Some(i)));
        }
    }
    func.check_arity(ctx, given)
}

struct Prepared {
    func: Func,
    items: Array,
    options: CallOptions,
}

fn prepare(
    ctx: &NativeCallContext,
    pool: &Pool,
    f: Dynamic,
    list: Dynamic,
    opts: Dynamic,
    star: bool,
    allowed: &[&str],
) -> RhaiResult<Prepared> {
    pool.check_running()?;
    let func = task_function(f)?;
    let mut items = items_of(ctx, list, "the list")?;
    if star {
        items = star_items(ctx, items)?;
    }
    let options = call_options(ctx, opts, allowed)?;
    check_items(ctx, &func, &items, star)?;
    Ok(Prepared {
        func,
        items,
        options,
    })
}

fn run_map(
    ctx: &NativeCallContext,
    pool: &Pool,
    f: Dynamic,
    list: Dynamic,
    opts: Dynamic,
    star: bool,
) -> RhaiResult<Array> {
    let Prepared {
        func,
        items,
        options,
    } = prepare(ctx, pool, f, list, opts, star, MAP_OPTIONS)?;
    let spec = JobSpec {
        chunksize: options
            .chunksize
            .unwrap_or_else(|| default_chunksize(items.len(), pool.size())),
        order: Order::Ordered,
        whole: true,
        eager: false,
        progress: options.progress,
        star,
    };
    let job = pool.submit(&func, items, spec)?;
    let waited = pool.wait_job(Some(ctx), job, None);
    if let Err(e) = waited {
        pool.forget(job);
        return Err(e);
    }
    pool.take_results(job).map_err(super::raise)
}

fn run_map_async(
    ctx: &NativeCallContext,
    pool: &Pool,
    f: Dynamic,
    list: Dynamic,
    opts: Dynamic,
    star: bool,
) -> RhaiResult<AsyncResult> {
    let Prepared {
        func,
        items,
        options,
    } = prepare(ctx, pool, f, list, opts, star, ASYNC_MAP_OPTIONS)?;
    let spec = JobSpec {
        chunksize: options
            .chunksize
            .unwrap_or_else(|| default_chunksize(items.len(), pool.size())),
        order: Order::Ordered,
        whole: true,
        eager: false,
        progress: options.progress,
        star,
    };
    let job = pool.submit(&func, items, spec)?;
    let result = AsyncResult::new(pool, job, false, options.callbacks);
    pool.poke(Some(ctx))?;
    Ok(result)
}

fn run_imap(
    ctx: &NativeCallContext,
    pool: &Pool,
    f: Dynamic,
    list: Dynamic,
    opts: Dynamic,
    order: Order,
) -> RhaiResult<PoolIterator> {
    let Prepared {
        func,
        items,
        options,
    } = prepare(ctx, pool, f, list, opts, false, MAP_OPTIONS)?;
    let spec = JobSpec {
        chunksize: options.chunksize.unwrap_or(1),
        order,
        whole: false,
        eager: false,
        progress: options.progress,
        star: false,
    };
    let job = pool.submit(&func, items, spec)?;
    let iterator = PoolIterator(Rc::new(Cursor {
        pool: pool.clone(),
        job,
        position: Cell::new(0),
        finished: Cell::new(false),
    }));
    pool.poke(Some(ctx))?;
    Ok(iterator)
}

fn kwargs_of(value: Dynamic) -> Result<Map, Error> {
    if value.is_unit() {
        return Ok(Map::new());
    }
    let shown = type_name(&value);
    value
        .try_cast::<Map>()
        .ok_or_else(|| type_error(format!("`kwargs` must be a map, not {shown}")))
}

fn submit_one(
    ctx: &NativeCallContext,
    pool: &Pool,
    f: Dynamic,
    args: Dynamic,
    kwargs: Dynamic,
    opts: Dynamic,
) -> RhaiResult<AsyncResult> {
    pool.check_running()?;
    let func = task_function(f)?;
    let args = if args.is_unit() {
        Array::new()
    } else {
        items_of(ctx, args, "`args`")?
    };
    let kwargs = kwargs_of(kwargs)?;
    let options = call_options(ctx, opts, APPLY_OPTIONS)?;
    let args = func.place_kwargs(ctx, args, kwargs)?;
    func.check_arity(ctx, [(args.len(), None)])?;
    let spec = JobSpec {
        chunksize: 1,
        order: Order::Ordered,
        whole: true,
        eager: true,
        progress: false,
        star: true,
    };
    let job = pool.submit(&func, vec![Dynamic::from_array(args)], spec)?;
    let result = AsyncResult::new(pool, job, true, options.callbacks);
    pool.poke(Some(ctx))?;
    Ok(result)
}

/// A list of strings, for `what`.
fn strings(value: Dynamic, what: &str, like: &str) -> Result<Vec<String>, Error> {
    let shown = type_name(&value);
    if value.is_string() {
        return Err(type_error(format!(
            "{what} is a list like {like}, not one string: {:?}",
            value.to_string()
        )));
    }
    let Some(items) = value.try_cast::<Array>() else {
        return Err(type_error(format!(
            "{what} must be a list like {like}, not {shown}"
        )));
    };
    items
        .into_iter()
        .map(|item| {
            let shown = type_name(&item);
            item.into_string()
                .map_err(|_| type_error(format!("{what} must hold strings, not {shown}")))
        })
        .collect()
}

/// Reads `hosts`, `ssh` and `procscript` into the places workers run.
fn hosts_of(
    hosts: Option<Dynamic>,
    ssh: Option<Dynamic>,
    program: Option<Dynamic>,
) -> Result<Vec<Host>, Error> {
    let hosts = match hosts.filter(|h| !h.is_unit()) {
        None => {
            if ssh.as_ref().is_some_and(|v| !v.is_unit())
                || program.as_ref().is_some_and(|v| !v.is_unit())
            {
                return Err(Error::value(
                    "`ssh` and `procscript` are for remote workers: give the Pool `hosts` too",
                ));
            }
            return Ok(Vec::new());
        }
        Some(hosts) => strings(
            hosts,
            "`hosts`",
            "[\"localhost\", \"node1\", \"user@node2\"]",
        )?,
    };
    if hosts.is_empty() {
        return Err(Error::value("`hosts` must name at least one host"));
    }
    let ssh = match ssh.filter(|v| !v.is_unit()) {
        None => Vec::new(),
        Some(v) => strings(v, "`ssh`", "[\"-p\", \"2222\"]")?,
    };
    let procscript = match program.filter(|v| !v.is_unit()) {
        None => super::remote::DEFAULT_PROGRAM.to_string(),
        Some(v) => {
            let shown = type_name(&v);
            let path = v.into_string().map_err(|_| {
                type_error(format!(
                    "`procscript` must be the path of procscript on the hosts, not {shown}"
                ))
            })?;
            if path.is_empty() || path.contains('\0') {
                return Err(Error::value(
                    "`procscript` must be a path or a name, not empty, without NUL",
                ));
            }
            path
        }
    };
    let mut remotes: Vec<Rc<RemoteHost>> = Vec::new();
    hosts
        .into_iter()
        .map(|host| {
            if host == super::remote::LOCALHOST {
                return Ok(Host::Local);
            }
            let remote = Remote::new(host, ssh.clone())
                .map_err(|e| Error::new(e.kind, format!("in `hosts`: {}", e.message)))?;
            // Two logins to the same place share one description.
            let shared = match remotes.iter().find(|r| r.remote == remote) {
                Some(r) => r.clone(),
                None => {
                    let r = Rc::new(RemoteHost {
                        remote,
                        procscript: procscript.clone(),
                    });
                    remotes.push(r.clone());
                    r
                }
            };
            Ok(Host::Remote(shared))
        })
        .collect()
}

/// Reads `Pool(#{ processes, initializer, initargs, maxtasksperchild, hosts, ssh,
/// procscript })`.
fn pool_options(ctx: &NativeCallContext, map: Map) -> RhaiResult<(usize, PoolOptions)> {
    let mut processes = None;
    let mut options = PoolOptions::default();
    let mut initargs = None;
    let (mut hosts, mut ssh, mut program) = (None, None, None);
    for (key, value) in map {
        match key.as_str() {
            "hosts" => hosts = Some(value),
            "ssh" => ssh = Some(value),
            "procscript" => program = Some(value),
            "processes" => processes = processes_of(value)?,
            "initializer" => {
                if !value.is_unit() {
                    options.initializer = Some(Func::from_value(value, "`initializer`")?);
                }
            }
            "initargs" => {
                initargs = Some(if value.is_unit() {
                    Array::new()
                } else {
                    items_of(ctx, value, "`initargs`")?
                });
            }
            "maxtasksperchild" => {
                if !value.is_unit() {
                    let shown = if value.is_int() || value.is_float() {
                        value.to_string()
                    } else {
                        type_name(&value)
                    };
                    match value.as_int() {
                        Ok(n) if n >= 1 => options.maxtasksperchild = Some(n as usize),
                        _ => {
                            return Err(Error::value(format!(
                                "`maxtasksperchild` must be a positive integer or (), not {shown}"
                            ))
                            .into())
                        }
                    }
                }
            }
            other => {
                return Err(Error::value(format!(
                    "unknown Pool option `{other}` (expected `processes`, `initializer`, \
                     `initargs`, `maxtasksperchild`, `hosts`, `ssh`, `procscript`)"
                ))
                .into())
            }
        }
    }
    options.initargs = initargs.unwrap_or_default();
    options.hosts = hosts_of(hosts, ssh, program)?;
    if !options.hosts.is_empty() && processes.is_none() {
        return Err(Error::value(
            "a Pool with `hosts` needs `processes`: the number of workers on each host",
        )
        .into());
    }
    if let Some(init) = &options.initializer {
        init.check_arity(ctx, [(options.initargs.len(), None)])?;
    } else if !options.initargs.is_empty() {
        return Err(Error::value("`initargs` without an `initializer`").into());
    }
    Ok((processes.unwrap_or_else(cpu_count), options))
}

fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn processes_of(n: Dynamic) -> Result<Option<usize>, Error> {
    if n.is_unit() {
        return Ok(None);
    }
    let shown = type_name(&n);
    let n = n.as_int().map_err(|_| {
        type_error(format!(
            "the number of processes must be an integer, not {shown}"
        ))
    })?;
    if !(1..=super::MAX_WORKERS as INT).contains(&n) {
        return Err(Error::value(format!(
            "a Pool needs from 1 to {} processes, not {n}",
            super::MAX_WORKERS
        )));
    }
    Ok(Some(n as usize))
}

#[export_module]
#[allow(unreachable_pub)]
mod pool_functions {
    use super::*;

    /// A pool of worker processes: made by `Pool()`, `Pool(n)` or `Pool(#{ ... })`.
    pub type Pool = super::Pool;
    /// The result of `apply_async`, `map_async` or `starmap_async`, to `get()` later.
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
        Ok(super::Pool::new(&ctx, cpu_count(), PoolOptions::default())?)
    }

    /// `Pool(n)`: a pool of `n` worker processes (1 to 1024; `()` for `cpu_count()`).
    ///
    /// `Pool(#{ processes, initializer, initargs, maxtasksperchild })`, Python's keyword
    /// form: `initializer(initargs...)` runs in each worker when it starts (a failure
    /// there fails the pool's calls instead of starting workers forever), and a worker
    /// is replaced by a fresh one after `maxtasksperchild` tasks.
    ///
    /// `Pool(#{ processes: n, hosts: [...], ssh: [...], procscript: "path" })` starts `n`
    /// workers on each host: `"localhost"` forks them here, any other host runs
    /// `procscript worker` there through `ssh` (with the `ssh` arguments; `procscript` is
    /// the program on the hosts, `"procscript"` by default). Remote workers get the
    /// script's source and run none of its statements: tasks call its functions and
    /// closures, and read `ARGS` and its global constants (`global::NAME`). Only data
    /// travels: a lock, a shared value or a queue in a remote task is a `ValueError`. An
    /// unreachable host fails a call with ssh's message (`ConnectionError`), and the other
    /// hosts carry on. See docs/remote.md.
    ///
    /// ```text
    /// let pool = Pool(#{ processes: 4, hosts: ["localhost", "node1", "alice@node2"],
    ///                    ssh: ["-o", "ConnectTimeout=10"], procscript: "/opt/bin/procscript" });
    /// print(pool.map(|x| x * x, 0..1000).len());   // 1000, computed on three hosts
    /// ```
    ///
    /// Errors: `TypeError` (not an integer or a map, an initializer that is not a function
    /// or takes other arguments, `hosts` or `ssh` not a list of strings), `ValueError` (out
    /// of range, an unknown option, a `maxtasksperchild` that is not a positive integer,
    /// `hosts` without `processes`, a host that ssh would misread, remote `initargs` that
    /// cannot travel, a script run without a source file), `ProcessError` (called in a
    /// daemon, such as a pool worker).
    ///
    /// ```rhai
    /// fn setup(tag) { print(`worker ${getpid()} ready for ${tag}`); }
    /// let pool = Pool(#{ processes: 2, initializer: setup, initargs: ["squares"],
    ///                    maxtasksperchild: 100 });
    /// print(pool.map(|x| x * x, 1..=4));   // [1, 4, 9, 16]
    /// ```
    #[rhai_fn(name = "Pool", return_raw, volatile)]
    pub fn pool_new_n(ctx: NativeCallContext, n: Dynamic) -> RhaiResult<Pool> {
        let (size, options) = if n.is_map() {
            pool_options(&ctx, n.cast::<Map>())?
        } else {
            let shown = type_name(&n);
            if !n.is_unit() && !n.is_int() {
                return Err(type_error(format!(
                    "Pool(n) takes a number of processes or an options map, not {shown}"
                ))
                .into());
            }
            (
                processes_of(n)?.unwrap_or_else(cpu_count),
                PoolOptions::default(),
            )
        };
        Ok(super::Pool::new(&ctx, size, options)?)
    }

    /// Calls `f` on every item of `list` in the workers and returns the results in order.
    /// `list` is anything a `for` loop walks: an array, a range (`0..100`,
    /// `range(0, 100, 5)`), a string (its characters) or a blob (its bytes). Items go out
    /// in chunks (about four per worker). The first error (a task's, or a dead worker's)
    /// is raised here and the rest of the call is cancelled.
    ///
    /// Errors: `TypeError` when `f` takes another number of arguments than one, checked
    /// before anything is sent: `square takes 1 argument, 2 given`.
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// let k = 10;
    /// print(pool.map(|x| x + k, [1, 2, 3]));   // [11, 12, 13]
    /// print(pool.map(|x| x * x, 0..5));        // [0, 1, 4, 9, 16]
    /// print(pool.map(|c| c.to_upper(), "abc")); // [A, B, C]
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

    /// Starts a `map` and returns an `AsyncResult` at once; its `get()` returns the list of
    /// results (or raises the first error).
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// let r = pool.map_async(|x| x * x, 0..4);
    /// print(r.get());   // [0, 1, 4, 9]
    /// ```
    #[rhai_fn(name = "map_async", return_raw, volatile)]
    pub fn map_async(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        run_map_async(&ctx, pool, f, list, Dynamic::UNIT, false)
    }

    /// `map_async` with options: `chunksize`, `progress`, and Python's `callback` (called
    /// with the list of results) and `error_callback` (called with the error map). The
    /// callbacks run in the script's process, during a later pool call (`get`, `wait`,
    /// `ready`, `join`, ...), as Python runs them in the pool's result thread.
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// let r = pool.map_async(|x| x + 1, [1, 2], #{ callback: |list| print(`done: ${list}`) });
    /// r.wait();          // prints "done: [2, 3]"
    /// ```
    #[rhai_fn(name = "map_async", return_raw, volatile)]
    pub fn map_async_opts(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
        opts: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        run_map_async(&ctx, pool, f, list, opts, false)
    }

    /// `starmap` started at once: an `AsyncResult` whose `get()` returns the list.
    ///
    /// ```rhai
    /// fn mul(a, b) { a * b }
    /// let pool = Pool(2);
    /// print(pool.starmap_async(mul, [[1, 2], [3, 4]]).get());   // [2, 12]
    /// ```
    #[rhai_fn(name = "starmap_async", return_raw, volatile)]
    pub fn starmap_async(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        run_map_async(&ctx, pool, f, list, Dynamic::UNIT, true)
    }

    /// `starmap_async` with options (`chunksize`, `progress`, `callback`,
    /// `error_callback`).
    #[rhai_fn(name = "starmap_async", return_raw, volatile)]
    pub fn starmap_async_opts(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        list: Dynamic,
        opts: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        run_map_async(&ctx, pool, f, list, opts, true)
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
        submit_one(&ctx, pool, f, Dynamic::UNIT, Dynamic::UNIT, Dynamic::UNIT)?.get(&ctx, None)
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
        submit_one(&ctx, pool, f, args, Dynamic::UNIT, Dynamic::UNIT)?.get(&ctx, None)
    }

    /// Calls `f` with `args` and the keyword arguments `kwargs` (a map matched to `f`'s
    /// parameter names), in a worker, and waits for its result.
    ///
    /// ```rhai
    /// fn power(base, exp) { base ** exp }
    /// let pool = Pool(1);
    /// print(pool.apply(power, [2], #{ exp: 10 }));   // 1024
    /// ```
    #[rhai_fn(name = "apply", return_raw, volatile)]
    pub fn apply_kw(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        args: Dynamic,
        kwargs: Dynamic,
    ) -> RhaiResult<Dynamic> {
        submit_one(&ctx, pool, f, args, kwargs, Dynamic::UNIT)?.get(&ctx, None)
    }

    /// Starts `f()` in a worker and returns an `AsyncResult` at once.
    #[rhai_fn(name = "apply_async", return_raw, volatile)]
    pub fn apply_async0(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        submit_one(&ctx, pool, f, Dynamic::UNIT, Dynamic::UNIT, Dynamic::UNIT)
    }

    /// Starts `f` with the array `args` in a worker and returns an `AsyncResult` at once:
    /// `get()` waits for the value (or raises the task's error), `get(timeout)` gives up
    /// with a `TimeoutError`, `wait(timeout)` waits without raising, `ready()` says whether
    /// it has come, `successful()` whether it came without an error.
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
        submit_one(&ctx, pool, f, args, Dynamic::UNIT, Dynamic::UNIT)
    }

    /// `apply_async` with keyword arguments (a map matched to `f`'s parameter names; `#{}`
    /// for none).
    ///
    /// ```rhai
    /// fn greet(name, greeting) { `${greeting}, ${name}` }
    /// let pool = Pool(1);
    /// print(pool.apply_async(greet, ["Ada"], #{ greeting: "Hello" }).get());   // Hello, Ada
    /// ```
    #[rhai_fn(name = "apply_async", return_raw, volatile)]
    pub fn apply_async_kw(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        args: Dynamic,
        kwargs: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        submit_one(&ctx, pool, f, args, kwargs, Dynamic::UNIT)
    }

    /// `apply_async` with keyword arguments and options: `callback` (called with the
    /// value) and `error_callback` (called with the error map). They run in the script's
    /// process, during a later pool call (`get`, `wait`, `ready`, `join`, ...); the pool
    /// keeps the result until they have run, even if the script drops it.
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// let r = pool.apply_async(|x| x * 2, [21], #{},
    ///                          #{ callback: |v| print(`got ${v}`),
    ///                             error_callback: |e| print(`failed: ${e.message}`) });
    /// r.wait();          // prints "got 42"
    /// ```
    #[rhai_fn(name = "apply_async", return_raw, volatile)]
    pub fn apply_async_opts(
        ctx: NativeCallContext,
        pool: &mut Pool,
        f: Dynamic,
        args: Dynamic,
        kwargs: Dynamic,
        opts: Dynamic,
    ) -> RhaiResult<AsyncResult> {
        submit_one(&ctx, pool, f, args, kwargs, opts)
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
        pool.join(&ctx)
    }

    /// What `with pool { ... }` calls before the block: a `ValueError` if the pool is not
    /// running, as in Python.
    ///
    /// ```rhai
    /// let pool = Pool(2);
    /// with pool {
    ///     print(pool.map(|x| x + 1, [1, 2]));   // [2, 3]
    /// }
    /// // the pool is terminated here
    /// try { pool.map(|x| x, [1]); } catch (e) { print(e.kind); }   // ValueError
    /// ```
    #[rhai_fn(name = "__enter__", return_raw, volatile)]
    pub fn enter(pool: &mut Pool) -> RhaiResult<()> {
        Ok(pool.check_running()?)
    }

    /// What `with pool { ... }` calls after the block, however it ends: `terminate()`, as
    /// Python's context manager does (results not yet taken are lost: `get` them inside
    /// the block, or `close()` and `join()` there).
    ///
    /// ```rhai
    /// let pool = Pool(1);
    /// with pool { print(pool.apply(|| 6 * 7)); }
    /// print(pool);   // <Pool processes=1 state=TERMINATE pool_size=0>
    /// ```
    #[rhai_fn(name = "__exit__", return_raw, volatile)]
    pub fn exit(pool: &mut Pool) -> RhaiResult<()> {
        Ok(pool.terminate()?)
    }

    /// The number of worker processes the pool keeps (on all its hosts together).
    #[rhai_fn(get = "processes", pure)]
    pub fn processes(pool: &mut Pool) -> INT {
        pool.size() as INT
    }

    /// The pids of the workers running now (a worker that died is left out at once, and
    /// replaced at the next pool call). For a worker on another host, the pid of its local
    /// `ssh` process.
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
        result.get(&ctx, None)
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
        let timeout = seconds(&timeout, "the timeout")?;
        result.get(&ctx, timeout)
    }

    /// Waits until the result (or the task's error) has come; raises nothing.
    #[rhai_fn(name = "wait", return_raw, volatile)]
    pub fn wait(ctx: NativeCallContext, result: &mut AsyncResult) -> RhaiResult<()> {
        result.wait(&ctx, None).map(|_| ())
    }

    /// Waits at most `timeout` seconds for the result, and returns either way, as Python's
    /// `wait(timeout)` does: `ready()` says which.
    ///
    /// ```rhai
    /// let pool = Pool(1);
    /// let r = pool.apply_async(|| { sleep(0.5); 1 });
    /// r.wait(0.01);
    /// print(r.ready());   // false
    /// r.wait();
    /// print(r.ready());   // true
    /// ```
    #[rhai_fn(name = "wait", return_raw, volatile)]
    pub fn wait_timeout(
        ctx: NativeCallContext,
        result: &mut AsyncResult,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        let timeout = seconds(&timeout, "the timeout")?;
        result.wait(&ctx, timeout).map(|_| ())
    }

    /// Whether the result (or the task's error) has come.
    #[rhai_fn(name = "ready", return_raw, volatile)]
    pub fn ready(ctx: NativeCallContext, result: &mut AsyncResult) -> RhaiResult<bool> {
        result.ready(&ctx)
    }

    /// Whether the task finished without an error (`ValueError` while it is not ready).
    ///
    /// ```rhai
    /// let pool = Pool(1);
    /// let r = pool.apply_async(|| throw "no");
    /// r.wait();
    /// print(r.successful());   // false
    /// ```
    #[rhai_fn(name = "successful", return_raw, volatile)]
    pub fn successful(ctx: NativeCallContext, result: &mut AsyncResult) -> RhaiResult<bool> {
        result.successful(&ctx)
    }

    /// `<AsyncResult ready>` or `<AsyncResult pending>`.
    #[rhai_fn(name = "to_string", pure)]
    pub fn result_to_string(result: &mut AsyncResult) -> String {
        result.describe()
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
