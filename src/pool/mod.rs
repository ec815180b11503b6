//! `Pool(n)`: a fixed set of forked worker processes that run script functions on lists of
//! arguments, as Python's `multiprocessing.Pool` does, without its two famous hangs: a
//! worker that dies (killed, OOM, `exit()` in a task) fails the calls that were waiting on
//! it, and the pool forks a replacement.
//!
//! Design, single-threaded like the rest of procscript:
//! - each worker is a daemon [`Process`] (`ForkPoolWorker-N`), forked with the ordinary
//!   process machinery (reaper, `--trace`, names), and talks to the parent over its own
//!   `AF_UNIX` socket pair: tasks one way, replies the other, each message framed as in
//!   [`crate::ipc::pipe`] and encoded with [`crate::ipc::codec`];
//! - a task names its function (workers inherited the whole AST at fork, so they find it by
//!   name and arity, closures included) and carries the closure's captured values (its
//!   curried arguments) and a chunk of argument lists;
//! - the parent keeps a queue of tasks not yet sent and, per worker, the tasks sent in
//!   order. Only the parent's side is non-blocking: it writes and reads with `MSG_DONTWAIT`
//!   and waits with `poll`, so neither side can deadlock on a full socket buffer, and
//!   Ctrl-C or SIGTERM ends the wait ([`crate::signal`]);
//! - end of input on a worker's socket means it died: its running task fails with a
//!   `ProcessError` naming the worker and its exit code, the tasks queued behind it go back
//!   to the queue, and a new worker is forked at the next call that can fork (every pool
//!   method; not a `for` loop over `imap`, which has no script context to fork with).
//!
//! Work progresses while the script is inside a pool call (`map`, `get`, a `for` loop over
//! `imap`, `ready`, `join`, ...). Between calls, tasks already written to a worker's socket
//! run on; replies wait in the socket buffer.

pub mod package;
mod worker;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::unistd::Pid;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

use crate::error::{Error, ErrorKind, Result};
use crate::ipc::codec;
use crate::ipc::pipe::{self, MAX_MESSAGE};
use crate::ipc::sync::Deadline;
use crate::process::wait::Exit;
use crate::process::{my_pid, Options, Process};

/// The most workers a pool may have.
pub const MAX_WORKERS: usize = 1024;

/// Chunks of a `map` or `imap` a worker may hold at once, queued behind the one it runs: a
/// few, so that it never waits for the parent, and not many, so that work stays balanced.
const LAZY_IN_FLIGHT: usize = 4;

/// Where a pool is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Closed,
    Terminated,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            Self::Running => "RUN",
            Self::Closed => "CLOSE",
            Self::Terminated => "TERMINATE",
        }
    }
}

/// A function as it travels: its name (workers find the body in the AST they inherited)
/// and its curried arguments (a closure's captured values).
#[derive(Clone)]
pub struct Func {
    name: String,
    curry: Vec<Dynamic>,
}

impl Func {
    /// Reads a function value (`square`, `Fn("square")`, a closure).
    pub fn from_value(value: Dynamic, what: &str) -> Result<Self> {
        let type_name = value.type_name();
        let Some(ptr) = value.try_cast::<FnPtr>() else {
            return Err(Error::new(
                ErrorKind::TypeError,
                format!(
                    "{what} must be a function (a name, `Fn(\"name\")` or a closure), not {type_name}"
                ),
            ));
        };
        Ok(Self {
            name: ptr.fn_name().to_string(),
            curry: ptr.curry().to_vec(),
        })
    }
}

/// How a job hands out its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By position (`map`, `starmap`, `imap`, `apply`).
    Ordered,
    /// As they arrive (`imap_unordered`).
    Unordered,
}

/// One call's worth of tasks and what came back.
struct Job {
    order: Order,
    total: usize,
    received: usize,
    results: Vec<Option<Dynamic>>,
    arrived: VecDeque<Dynamic>,
    /// The failure an ordered walk meets first (a catchable error map), and the position
    /// from which results are missing because of it.
    error: Option<Map>,
    error_at: usize,
    bar: Option<ProgressBar>,
}

impl Job {
    fn done(&self) -> bool {
        self.error.is_some() || self.received == self.total
    }

    /// Records a failure at position `at`; the earliest one is the one reported.
    fn fail(&mut self, error: Map, at: usize) {
        if self.error.is_none() || at < self.error_at {
            self.error = Some(error);
            self.error_at = at;
        }
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

/// A chunk of a job, encoded and framed, ready to write.
#[derive(Clone)]
struct Task {
    job: u64,
    index: usize,
    count: usize,
    eager: bool,
    bytes: Rc<Vec<u8>>,
}

struct Worker {
    process: Process,
    fd: OwnedFd,
    /// Bytes to write: the tail of `out[0]` from `written`, then the rest.
    out: VecDeque<Rc<Vec<u8>>>,
    written: usize,
    input: Vec<u8>,
    /// Tasks sent, in order; the first is the one running.
    in_flight: VecDeque<Task>,
    dead: bool,
}

struct Inner {
    size: usize,
    creator: Pid,
    state: State,
    workers: Vec<Worker>,
    pending: VecDeque<Task>,
    jobs: HashMap<u64, Job>,
    next_job: u64,
}

/// A handle on a pool; clones share it. When the last handle goes, the workers are
/// terminated (in the process that made the pool).
#[derive(Clone)]
pub struct Pool(Rc<RefCell<Inner>>);

/// How a job's tasks are cut, sent and reported.
#[derive(Debug, Clone, Copy)]
pub struct JobSpec {
    /// Argument lists per task.
    pub chunksize: usize,
    /// How the results come out.
    pub order: Order,
    /// Sent at once to the least busy worker (`apply_async`), rather than a few at a time
    /// as workers free up (`map`, `imap`).
    pub eager: bool,
    /// Draw a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Each item is an array of arguments (`starmap`, `apply`), not the one argument.
    pub star: bool,
}

/// What `map` and friends accept besides the function and the list.
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    /// Show a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Items per task; `None`: Python's default.
    pub chunksize: Option<usize>,
}

fn pool_error(message: impl Into<String>) -> Error {
    Error::value(message)
}

impl Pool {
    /// Forks `size` workers that call functions within `ctx`.
    pub fn new(ctx: &NativeCallContext, size: usize) -> Result<Self> {
        if size == 0 || size > MAX_WORKERS {
            return Err(Error::value(format!(
                "a Pool needs from 1 to {MAX_WORKERS} processes, not {size}"
            )));
        }
        let pool = Self(Rc::new(RefCell::new(Inner {
            size,
            creator: my_pid(),
            state: State::Running,
            workers: Vec::new(),
            pending: VecDeque::new(),
            jobs: HashMap::new(),
            next_job: 0,
        })));
        for _ in 0..size {
            pool.spawn_worker(ctx)?;
        }
        Ok(pool)
    }

    /// The number of workers it keeps.
    pub fn size(&self) -> usize {
        self.0.borrow().size
    }

    /// The workers' pids, as they are now.
    pub fn pids(&self) -> Vec<Pid> {
        self.0
            .borrow()
            .workers
            .iter()
            .filter_map(|w| w.process.pid())
            .collect()
    }

    fn check_owner(&self) -> Result<()> {
        let creator = self.0.borrow().creator;
        if creator != my_pid() {
            return Err(Error::process(format!(
                "a Pool can only be used by the process that made it (process {creator}), this is {}",
                my_pid()
            )));
        }
        Ok(())
    }

    fn check_running(&self) -> Result<()> {
        self.check_owner()?;
        match self.0.borrow().state {
            State::Running => Ok(()),
            state => Err(pool_error(format!(
                "the Pool is not running (it was {}): no new tasks",
                if state == State::Closed {
                    "closed"
                } else {
                    "terminated"
                }
            ))),
        }
    }

    fn spawn_worker(&self, ctx: &NativeCallContext) -> Result<()> {
        let inherited: Vec<RawFd> = self
            .0
            .borrow()
            .workers
            .iter()
            .map(|w| w.fd.as_raw_fd())
            .collect();
        let (parent_end, child_end) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::os("socketpair for a pool worker", e))?;
        let process = Process::new(
            None,
            "pool worker",
            Options {
                daemon: Some(true),
                ..Options::default()
            },
        );
        process.set_name(process.name().replacen("Process", "ForkPoolWorker", 1));
        process.take_job_for_start()?;
        let parent_raw = parent_end.as_raw_fd();
        let parent_pid = my_pid();
        // The parent's ends of this and the other workers' sockets stay open in the child
        // only as copies in the parent's data, which it never drops (it ends in `_exit`):
        // the child closes them, so that each worker sees the parent go.
        let close = inherited.into_iter().chain(std::iter::once(parent_raw));
        process.fork_closing(close.collect(), move || {
            worker::main(ctx, &child_end, parent_pid)
        })?;
        self.0.borrow_mut().workers.push(Worker {
            process,
            fd: parent_end,
            out: VecDeque::new(),
            written: 0,
            input: Vec::new(),
            in_flight: VecDeque::new(),
            dead: false,
        });
        Ok(())
    }

    /// Adds a job calling `func` on each item of `items` (each item an argument list when
    /// `spec.star`, else the one argument); returns its id.
    pub fn submit(
        &self,
        ctx: &NativeCallContext,
        func: &Func,
        items: Array,
        spec: JobSpec,
    ) -> Result<u64> {
        let JobSpec {
            chunksize,
            order,
            eager,
            progress,
            star,
        } = spec;
        self.check_running()?;
        let total = items.len();
        let job = self.0.borrow().next_job;
        let type_name = |t: &str| ctx.engine().map_type_name(t).to_string();
        let mut tasks = Vec::new();
        let mut index = 0;
        let mut items = items.into_iter().peekable();
        let curry: Array = func.curry.clone();
        while items.peek().is_some() {
            let chunk: Array = items.by_ref().take(chunksize.max(1)).collect();
            let count = chunk.len();
            let message: Array = vec![
                Dynamic::from_int(job as i64),
                Dynamic::from_int(index as i64),
                Dynamic::from(func.name.clone()),
                Dynamic::from_array(curry.clone()),
                Dynamic::from_array(chunk),
                Dynamic::from_bool(star),
            ];
            let mut bytes = vec![0u8; 8];
            codec::encode(&Dynamic::from_array(message), &mut bytes)
                .map_err(|e| pipe::codec_error(e, type_name))?;
            let len = (bytes.len() - 8) as u64;
            if len > MAX_MESSAGE {
                return Err(Error::value(format!(
                    "a pool task of {len} bytes is larger than the limit of {MAX_MESSAGE}"
                )));
            }
            bytes[..8].copy_from_slice(&len.to_le_bytes());
            tasks.push(Task {
                job,
                index,
                count,
                eager,
                bytes: Rc::new(bytes),
            });
            index += count;
        }
        let bar = (progress && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} pool {pos}/{len} tasks [{bar:30}] {elapsed_precise} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        let mut inner = self.0.borrow_mut();
        inner.next_job += 1;
        inner.jobs.insert(
            job,
            Job {
                order,
                total,
                received: 0,
                results: if order == Order::Ordered {
                    vec![None; total]
                } else {
                    Vec::new()
                },
                arrived: VecDeque::new(),
                error: None,
                error_at: 0,
                bar,
            },
        );
        inner.pending.extend(tasks);
        Ok(job)
    }

    /// Forgets a job: its remaining tasks are not sent, and replies still to come are dropped.
    pub fn forget(&self, job: u64) {
        if let Ok(mut inner) = self.0.try_borrow_mut() {
            if let Some(job) = inner.jobs.remove(&job) {
                if let Some(bar) = job.bar {
                    bar.finish_and_clear();
                }
            }
        }
    }

    /// Whether a job has all its results, or has failed.
    pub fn job_done(&self, job: u64) -> bool {
        self.0.borrow().jobs.get(&job).is_none_or(Job::done)
    }

    /// Sends and receives what can be without waiting (and forks replacements with `ctx`).
    pub fn poke(&self, ctx: Option<&NativeCallContext>) -> Result<()> {
        self.pump(ctx, Deadline::after(Some(Duration::ZERO)), |_| false)
            .map(|_| ())
    }

    /// Works until `done` holds or the deadline passes; returns whether `done` held.
    fn pump(
        &self,
        ctx: Option<&NativeCallContext>,
        deadline: Deadline,
        mut done: impl FnMut(&Inner) -> bool,
    ) -> Result<bool> {
        self.check_owner()?;
        loop {
            crate::signal::check()?;
            if let Some(ctx) = ctx {
                self.replace_dead(ctx)?;
            }
            let mut inner = self.0.borrow_mut();
            inner.dispatch();
            inner.exchange();
            if ctx.is_none() || inner.state == State::Terminated {
                inner.fail_if_no_workers();
            }
            if done(&inner) {
                return Ok(true);
            }
            if inner.workers.iter().any(|w| w.dead) {
                continue;
            }
            if deadline.passed() {
                return Ok(false);
            }
            let mut fds: Vec<libc::pollfd> = inner
                .workers
                .iter()
                .map(|w| {
                    let mut events = libc::POLLIN;
                    if !w.out.is_empty() {
                        events |= libc::POLLOUT;
                    }
                    libc::pollfd {
                        fd: w.fd.as_raw_fd(),
                        events,
                        revents: 0,
                    }
                })
                .collect();
            drop(inner);
            // A worker that ends is seen here too, by the reaper (its socket may stay open in
            // a sibling that inherited it), so no timer is needed.
            let reaped = crate::process::wait::reaped_count();
            crate::process::wait::wait_ready_or(&mut fds, deadline, "the pool's workers", || {
                crate::process::wait::reaped_count() != reaped
            })?;
        }
    }

    /// Forks workers to make up the pool's size again, if it still takes work.
    fn replace_dead(&self, ctx: &NativeCallContext) -> Result<()> {
        loop {
            {
                let inner = self.0.borrow();
                let wanted = match inner.state {
                    State::Running => inner.size,
                    State::Closed if !inner.pending.is_empty() => inner.size,
                    _ => 0,
                };
                if inner.workers.len() >= wanted {
                    return Ok(());
                }
            }
            self.spawn_worker(ctx)?;
        }
    }

    /// Waits for a job to finish, at most `timeout`; `Ok(false)` if it did not in time.
    pub fn wait_job(
        &self,
        ctx: Option<&NativeCallContext>,
        job: u64,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        self.pump(ctx, Deadline::after(timeout), |inner| {
            inner.jobs.get(&job).is_none_or(Job::done)
        })
    }

    /// Takes a finished job's results in order, or its error.
    pub fn take_results(&self, job: u64) -> std::result::Result<Array, Map> {
        let job = self.0.borrow_mut().jobs.remove(&job);
        let Some(job) = job else {
            return Err(Error::process("the results of this call are gone").to_map());
        };
        if let Some(error) = job.error {
            return Err(error);
        }
        if let Some(bar) = job.bar {
            bar.finish_and_clear();
        }
        Ok(job
            .results
            .into_iter()
            .map(|r| r.unwrap_or(Dynamic::UNIT))
            .collect())
    }

    /// The next result of an `imap` job: `Ok(None)` at the end.
    pub fn next_result(
        &self,
        ctx: Option<&NativeCallContext>,
        job: u64,
        position: usize,
        timeout: Option<Duration>,
    ) -> std::result::Result<Option<Dynamic>, Box<EvalAltResult>> {
        let ready = |inner: &Inner| match inner.jobs.get(&job) {
            None => true,
            Some(j) => {
                position >= j.total
                    || match j.order {
                        Order::Ordered => {
                            j.results[position].is_some()
                                || (j.error.is_some() && position >= j.error_at)
                        }
                        Order::Unordered => !j.arrived.is_empty() || j.error.is_some(),
                    }
            }
        };
        if !self.pump(ctx, Deadline::after(timeout), ready)? {
            return Err(
                Error::new(ErrorKind::TimeoutError, "no result from the pool in time").into(),
            );
        }
        let mut inner = self.0.borrow_mut();
        let Some(j) = inner.jobs.get_mut(&job) else {
            return Ok(None);
        };
        if position >= j.total {
            if let Some(bar) = j.bar.take() {
                bar.finish_and_clear();
            }
            return Ok(None);
        }
        let value = match j.order {
            Order::Ordered => j.results[position].take(),
            Order::Unordered => j.arrived.pop_front(),
        };
        match value {
            Some(value) => Ok(Some(value)),
            None => {
                let error = j.error.clone().unwrap_or_default();
                Err(raise(error))
            }
        }
    }

    /// `close()`: no new tasks; the workers end once the queued ones are done (`join`).
    pub fn close(&self) -> Result<()> {
        self.check_owner()?;
        let mut inner = self.0.borrow_mut();
        if inner.state == State::Running {
            inner.state = State::Closed;
        }
        Ok(())
    }

    /// `terminate()`: ends the workers now; calls still waiting fail.
    pub fn terminate(&self) -> Result<()> {
        self.check_owner()?;
        let workers = {
            let mut inner = self.0.borrow_mut();
            inner.state = State::Terminated;
            inner.pending.clear();
            let error = Error::process("the Pool was terminated before this task finished");
            for job in inner.jobs.values_mut() {
                if !job.done() {
                    job.fail(error.to_map(), 0);
                }
            }
            std::mem::take(&mut inner.workers)
        };
        end_workers(workers);
        Ok(())
    }

    /// `join()`: after `close()`, waits for the queued tasks and for the workers to end;
    /// after `terminate()`, waits for the workers to end.
    pub fn join(&self, ctx: &NativeCallContext) -> Result<()> {
        self.check_owner()?;
        if self.0.borrow().state == State::Running {
            return Err(pool_error(
                "the Pool is still running: call close() or terminate() before join()",
            ));
        }
        self.pump(Some(ctx), Deadline::NEVER, |inner| {
            inner.pending.is_empty() && inner.workers.iter().all(|w| w.in_flight.is_empty())
        })?;
        let workers = std::mem::take(&mut self.0.borrow_mut().workers);
        for worker in &workers {
            // End of input tells the worker to finish.
            let _ = nix::sys::socket::shutdown(
                worker.fd.as_raw_fd(),
                nix::sys::socket::Shutdown::Write,
            );
        }
        for worker in &workers {
            worker.process.join(None)?;
        }
        Ok(())
    }

    /// Python's repr: `<Pool processes=2 state=RUN pool_size=2>`.
    pub fn describe(&self) -> String {
        let inner = self.0.borrow();
        format!(
            "<Pool processes={} state={} pool_size={}>",
            inner.size,
            inner.state.name(),
            inner.workers.len()
        )
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.creator == my_pid() && !self.workers.is_empty() {
            end_workers(std::mem::take(&mut self.workers));
        }
    }
}

/// SIGTERM, a short grace, then SIGKILL; every worker is reaped before this returns.
fn end_workers(workers: Vec<Worker>) {
    for worker in &workers {
        let _ = worker.process.signal(Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let all = crate::process::wait::wait_until(Deadline::at(Some(deadline)), || {
        workers.iter().all(|w| w.process.exit().is_some())
    });
    if !all {
        for worker in &workers {
            let _ = worker.process.signal(Signal::SIGKILL);
        }
        crate::process::wait::wait_until(Deadline::NEVER, || {
            workers.iter().all(|w| w.process.exit().is_some())
        });
    }
}

impl Inner {
    /// Hands queued tasks to the least busy workers.
    fn dispatch(&mut self) {
        while let Some(task) = self.pending.front() {
            // After a failure, an ordered job still wants the results before it.
            let wanted = self.jobs.get(&task.job).is_some_and(|job| {
                job.received < job.total
                    && (job.error.is_none()
                        || (job.order == Order::Ordered && task.index < job.error_at))
            });
            if !wanted {
                self.pending.pop_front();
                continue;
            }
            let Some(worker) = self
                .workers
                .iter_mut()
                .filter(|w| !w.dead)
                .min_by_key(|w| w.in_flight.len())
            else {
                return;
            };
            if !task.eager && worker.in_flight.len() >= LAZY_IN_FLIGHT {
                return;
            }
            let task = self.pending.pop_front().expect("a task");
            worker.out.push_back(task.bytes.clone());
            worker.in_flight.push_back(task);
        }
    }

    /// Writes and reads what the sockets take and hold now; handles replies and deaths.
    fn exchange(&mut self) {
        let mut replies = Vec::new();
        for (w, worker) in self.workers.iter_mut().enumerate() {
            if !worker.dead {
                worker.exchange();
            }
            // Replies that arrived before a death still count.
            match worker.messages() {
                Ok(messages) => replies.extend(messages.into_iter().map(|m| (w, m))),
                Err(()) => worker.dead = true,
            }
        }
        for (w, reply) in replies {
            self.handle_reply(w, reply);
        }
        while let Some(w) = self.workers.iter().position(|w| w.dead) {
            let worker = self.workers.remove(w);
            self.buried(worker);
        }
    }

    fn handle_reply(&mut self, w: usize, reply: Dynamic) {
        let Some(task) = self.workers[w].in_flight.pop_front() else {
            self.workers[w].dead = true;
            return;
        };
        let parsed = reply.try_cast::<Array>().and_then(|mut a| {
            if a.len() != 4 {
                return None;
            }
            let payload = std::mem::take(&mut a[3]);
            let ok = a[2].as_bool().ok()?;
            let index = a[1].as_int().ok()? as usize;
            Some((index, ok, payload))
        });
        let Some((index, ok, payload)) = parsed.filter(|p| p.0 == task.index) else {
            self.workers[w].dead = true;
            return;
        };
        let Some(job) = self.jobs.get_mut(&task.job) else {
            return;
        };
        if !ok {
            job.fail(payload.try_cast::<Map>().unwrap_or_default(), task.index);
            return;
        }
        let values = payload.try_cast::<Array>().unwrap_or_default();
        if values.len() != task.count {
            let error = Error::process("a pool worker sent a reply of the wrong size");
            job.fail(error.to_map(), task.index);
            return;
        }
        job.received += values.len();
        if let Some(bar) = &job.bar {
            bar.inc(values.len() as u64);
            if job.received == job.total {
                bar.finish_and_clear();
            }
        }
        match job.order {
            Order::Ordered => {
                for (i, value) in values.into_iter().enumerate() {
                    if let Some(slot) = job.results.get_mut(index + i) {
                        *slot = Some(value);
                    }
                }
            }
            Order::Unordered => job.arrived.extend(values),
        }
    }

    /// A worker's socket closed: reap it, fail its running task, requeue the others.
    fn buried(&mut self, mut worker: Worker) {
        let name = worker.process.name();
        let pid = worker
            .process
            .pid()
            .map_or_else(|| "?".into(), |p| p.to_string());
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        if !crate::process::wait::wait_until(Deadline::at(Some(deadline)), || {
            worker.process.exit().is_some()
        }) {
            let _ = worker.process.signal(Signal::SIGKILL);
            crate::process::wait::wait_until(Deadline::NEVER, || worker.process.exit().is_some());
        }
        let exit = worker.process.exit();
        let how = match exit {
            Some(Exit::Signal(sig)) => match Signal::try_from(sig) {
                Ok(s) => format!("was killed by {}", s.as_str()),
                Err(_) => format!("was killed by signal {sig}"),
            },
            Some(Exit::Code(code)) => {
                format!("exited with code {code} (`exit()` in a task ends its worker)")
            }
            None => "ended".into(),
        };
        let running = worker.in_flight.pop_front();
        for task in worker.in_flight.drain(..).rev() {
            self.pending.push_front(task);
        }
        if let Some(task) = running {
            if let Some(job) = self.jobs.get_mut(&task.job) {
                let mut map = Error::process(format!(
                    "a pool worker ({name}, pid {pid}) {how} while running this task"
                ))
                .to_map();
                map.insert(
                    "exitcode".into(),
                    exit.map_or(Dynamic::UNIT, |e| Dynamic::from_int(e.exitcode())),
                );
                job.fail(map, task.index);
            }
        }
    }

    /// With no worker left and none to be forked here, queued work can only fail.
    fn fail_if_no_workers(&mut self) {
        if !self.workers.is_empty() {
            return;
        }
        let message = if self.state == State::Terminated {
            "the Pool was terminated before this task finished"
        } else {
            "every worker of the Pool has died, and none can be started inside a `for` loop \
             over imap: call any pool method to start new ones"
        };
        for task in self.pending.drain(..) {
            if let Some(job) = self.jobs.get_mut(&task.job) {
                job.fail(Error::process(message).to_map(), task.index);
            }
        }
    }
}

impl Worker {
    fn exchange(&mut self) {
        let fd = self.fd.as_fd();
        // Write what the socket takes.
        while let Some(front) = self.out.front() {
            match nix::sys::socket::send(
                fd.as_raw_fd(),
                &front[self.written..],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => {
                    self.written += n;
                    if self.written == front.len() {
                        self.out.pop_front();
                        self.written = 0;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        // Read what is there.
        let mut buf = [0u8; 64 * 1024];
        loop {
            match nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => {
                    self.dead = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
    }

    /// Whole messages out of the input buffer.
    fn messages(&mut self) -> std::result::Result<Vec<Dynamic>, ()> {
        let mut out = Vec::new();
        let mut at = 0;
        while self.input.len() - at >= 8 {
            let len = u64::from_le_bytes(self.input[at..at + 8].try_into().expect("8 bytes"));
            if len > MAX_MESSAGE {
                return Err(());
            }
            let end = at + 8 + len as usize;
            if self.input.len() < end {
                break;
            }
            out.push(codec::decode(&self.input[at + 8..end]).map_err(|_| ())?);
            at = end;
        }
        self.input.drain(..at);
        Ok(out)
    }
}

/// Turns a caught error map into an error the script can catch.
pub fn raise(map: Map) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from_map(map), Position::NONE).into()
}
