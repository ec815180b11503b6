//! `Pool`: a set of forked worker processes that run script functions on lists of
//! arguments, as Python's `multiprocessing.Pool` does, without its two famous hangs: a
//! worker that dies (killed, OOM, `exit()` in a task) fails the call that was waiting on
//! it, and the pool forks a replacement.
//!
//! The rooms, single-threaded like the rest of procscript:
//! - [`protocol`]: the messages, [`protocol::TaskMsg`] and [`protocol::ReplyMsg`], framed
//!   as a `Pipe` frames its messages;
//! - [`scheduler`]: the bookkeeping (which task goes to which worker, what a reply or a
//!   death means for a call), with no sockets or processes in it;
//! - `worker`: the worker's loop, over any pair of descriptors;
//! - [`board`]: a little shared memory where workers count the tasks they start and
//!   read which calls are cancelled;
//! - this module: the IO. Each worker is a daemon [`Process`] (`ForkPoolWorker-N`),
//!   forked with the ordinary process machinery (reaper, `--trace`, names), with its own
//!   `AF_UNIX` socket pair. Only the parent's side is non-blocking: it writes and reads
//!   with `MSG_DONTWAIT` and waits in `wait`, the one place the pool waits, so neither
//!   side can deadlock on a full socket buffer, and Ctrl-C or SIGTERM ends the wait;
//! - [`result`]: `AsyncResult`, with the callbacks that run in the script's process;
//! - [`remote`]: workers on other hosts, `procscript worker` under ssh, whose channel is
//!   also a socket pair (the other end is the local `ssh`'s stdin and stdout), so the IO
//!   here treats both kinds alike.
//!
//! Work progresses while the script is inside a pool call (`map`, `get`, a `for` loop over
//! `imap`, `ready`, `join`, ...). Between calls, tasks already written to a worker's socket
//! run on; replies wait in the socket buffer. End of input on a worker's socket means it
//! died: the scheduler fails the task it was running (if the board says it had started
//! one) and queues the others again, and a new worker is forked at the next call that can
//! fork (every pool method; not a `for` loop over `imap`, which has no script context to
//! fork with).

pub(crate) mod board;
pub(crate) mod func;
pub(crate) mod package;
pub(crate) mod protocol;
pub(crate) mod remote;
pub(crate) mod result;
pub(crate) mod scheduler;
pub(crate) mod worker;

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::io::IsTerminal;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::unistd::Pid;
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext, Position};

use self::board::Board;
use self::func::Func;
use self::protocol::{ReplyMsg, ScriptMsg, TaskMsg};
use self::remote::{Host, Link};
use self::result::AsyncResult;
pub(crate) use self::scheduler::Order;
use self::scheduler::{Death, Job, Next, Scheduler, Task, WorkerId};
use crate::error::{Error, ErrorKind, Result, RhaiResult};
use crate::ipc::pipe;
use crate::process::wait::Exit;
use crate::process::{my_pid, Options, Process};
use crate::sys::Deadline;

/// The most workers a pool may have.
pub(crate) const MAX_WORKERS: usize = 1024;

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

/// What `Pool(#{ ... })` takes besides the number of processes.
#[derive(Debug, Clone, Default)]
pub(crate) struct PoolOptions {
    /// Called in each worker when it starts, with `initargs`.
    pub initializer: Option<Func>,
    /// The initializer's arguments.
    pub initargs: Array,
    /// Tasks a worker takes before it is replaced (`None`: no limit).
    pub maxtasksperchild: Option<usize>,
    /// Where the workers run, `processes` on each; empty: all here.
    pub hosts: Vec<Host>,
}

/// How a job's tasks are cut, sent and reported.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobSpec {
    /// Argument lists per task.
    pub chunksize: usize,
    /// How the results come out.
    pub order: Order,
    /// The results are wanted all together (`map`, `apply`, the `_async` forms), not one by
    /// one (`imap`): a failure cancels the whole call.
    pub whole: bool,
    /// Sent at once to the least busy worker (`apply_async`), rather than a few at a time
    /// as workers free up (`map`, `imap`).
    pub eager: bool,
    /// Draw a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Each item is an array of arguments (`starmap`, `apply`), not the one argument.
    pub star: bool,
}

struct Worker {
    id: WorkerId,
    /// Its place in [`Inner::seats`].
    seat: usize,
    /// A remote worker's host and ssh log; `None` for a forked one.
    link: Option<Link>,
    process: Process,
    fd: OwnedFd,
    /// Bytes to write: the tail of `out[0]` from `written`, then the rest.
    out: VecDeque<Rc<Vec<u8>>>,
    written: usize,
    input: Vec<u8>,
    /// Where `read` receives, before the bytes join `input`.
    scratch: Vec<u8>,
    /// Why it is to be buried: its channel ended, or it broke the protocol.
    dead: Option<Burial>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Burial {
    /// End of input or a reset: it is dying or dead.
    Ended,
    /// It sent something that makes no sense: it is ended.
    Misbehaved,
    /// A remote worker that cannot be used, and why: it is ended.
    Refused(String),
}

/// A place for a worker: where it runs, and whether it is still wanted there.
struct Seat {
    host: Host,
    /// A remote worker here could not start: no other is tried.
    given_up: bool,
}

struct Inner {
    size: usize,
    /// `size` places, each for one worker.
    seats: Vec<Seat>,
    /// What a remote worker is sent first (its `host` filled in for each).
    script: Option<ScriptMsg>,
    /// Hosts whose failure to start a worker has been reported, until one starts there.
    reported: HashSet<String>,
    creator: Pid,
    state: State,
    options: PoolOptions,
    workers: Vec<Worker>,
    board: Board,
    sched: Scheduler,
    /// Results with callbacks, kept until the callbacks have run.
    watched: Vec<AsyncResult>,
}

/// A handle on a pool; clones share it. When the last handle goes, the workers are
/// terminated (in the process that made the pool).
#[derive(Clone)]
pub(crate) struct Pool(Rc<RefCell<Inner>>);

fn pool_error(message: impl Into<String>) -> Error {
    Error::value(message)
}

impl Pool {
    /// Forks `size` workers that call functions within `ctx`.
    ///
    /// With `options.hosts`, `size` workers on each host: forked for [`Host::Local`],
    /// started through ssh for the others.
    pub(crate) fn new(ctx: &NativeCallContext, size: usize, options: PoolOptions) -> Result<Self> {
        let hosts = if options.hosts.is_empty() {
            vec![Host::Local]
        } else {
            options.hosts.clone()
        };
        let total = size.saturating_mul(hosts.len());
        if size == 0 || total > MAX_WORKERS {
            return Err(Error::value(format!(
                "a Pool needs from 1 to {MAX_WORKERS} processes in all, not {total}"
            )));
        }
        let seats: Vec<Seat> = hosts
            .iter()
            .flat_map(|h| std::iter::repeat_n(h, size))
            .map(|host| Seat {
                host: host.clone(),
                given_up: false,
            })
            .collect();
        let script = if seats.iter().any(|s| matches!(s.host, Host::Remote(_))) {
            let init = options
                .initializer
                .clone()
                .map(|f| (f, options.initargs.clone()));
            Some(remote::script_message(ctx, init.as_ref())?)
        } else {
            None
        };
        let pool = Self(Rc::new(RefCell::new(Inner {
            size: total,
            seats,
            script,
            reported: HashSet::new(),
            creator: my_pid(),
            state: State::Running,
            sched: Scheduler::new(options.maxtasksperchild),
            options,
            workers: Vec::new(),
            board: Board::new()?,
            watched: Vec::new(),
        })));
        for seat in 0..total {
            pool.spawn_worker(ctx, seat)?;
        }
        Ok(pool)
    }

    /// The number of workers it keeps.
    pub(crate) fn size(&self) -> usize {
        self.0.borrow().size
    }

    /// The workers' pids, as they are now (after noticing the ones that died).
    pub(crate) fn pids(&self) -> Vec<Pid> {
        if self.check_owner().is_ok() {
            if let Ok(mut inner) = self.0.try_borrow_mut() {
                inner.exchange();
            }
        }
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

    /// Checks that the pool takes new tasks: `ValueError` after `close()` or
    /// `terminate()`, the initializer's error once it has failed.
    pub(crate) fn check_running(&self) -> Result<()> {
        self.check_owner()?;
        let inner = self.0.borrow();
        match inner.state {
            State::Running => {}
            state => {
                return Err(pool_error(format!(
                    "the Pool is not running (it was {}): no new tasks",
                    if state == State::Closed {
                        "closed"
                    } else {
                        "terminated"
                    }
                )))
            }
        }
        match inner.sched.broken() {
            Some(error) => Err(Error::process(format!(
                "the Pool takes no tasks: its initializer failed ({})",
                error
                    .get("message")
                    .map_or_else(String::new, ToString::to_string)
            ))),
            None => Ok(()),
        }
    }

    /// Starts a worker for `seat`: forked here, or through ssh.
    fn spawn_worker(&self, ctx: &NativeCallContext, seat: usize) -> Result<()> {
        let (id, host) = {
            let inner = self.0.borrow();
            let used: Vec<WorkerId> = inner.workers.iter().map(|w| w.id).collect();
            let id = (0..MAX_WORKERS)
                .find(|i| !used.contains(i))
                .ok_or_else(|| Error::value("a Pool has no room for another worker"))?;
            (id, inner.seats[seat].host.clone())
        };
        let Host::Remote(host) = host else {
            return self.fork_worker(ctx, id, seat);
        };
        let mut script = self.0.borrow().script.clone().expect("made with the pool");
        script.host = host.remote.host.clone();
        let first = pipe::frame(&script.into_value(), crate::convert::script_type_name)?;
        let (process, fd, link) = remote::spawn(&host)?;
        let mut inner = self.0.borrow_mut();
        inner.sched.add_worker(id);
        inner.workers.push(Worker {
            id,
            seat,
            link: Some(link),
            process,
            fd,
            out: VecDeque::from([Rc::new(first)]),
            written: 0,
            input: Vec::new(),
            scratch: Vec::new(),
            dead: None,
        });
        Ok(())
    }

    /// Forks a worker `id` for `seat`.
    fn fork_worker(&self, ctx: &NativeCallContext, id: WorkerId, seat: usize) -> Result<()> {
        let (inherited, board, init) = {
            let inner = self.0.borrow();
            let inherited: Vec<RawFd> = inner.workers.iter().map(|w| w.fd.as_raw_fd()).collect();
            let init = inner
                .options
                .initializer
                .clone()
                .map(|f| (f, inner.options.initargs.clone()));
            (inherited, inner.board.clone(), init)
        };
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
        board.reset(id);
        let parent_raw = parent_end.as_raw_fd();
        // The parent's ends of this and the other workers' sockets stay open in the child
        // only as copies in the parent's data, which it never drops (it ends in `_exit`):
        // the child closes them, so that each worker sees the parent go.
        let close = inherited.into_iter().chain(std::iter::once(parent_raw));
        process.fork_closing(close.collect(), move || {
            worker::main(ctx, &child_end, board, id, init)
        })?;
        let mut inner = self.0.borrow_mut();
        inner.sched.add_worker(id);
        inner.workers.push(Worker {
            id,
            seat,
            link: None,
            process,
            fd: parent_end,
            out: VecDeque::new(),
            written: 0,
            input: Vec::new(),
            scratch: Vec::new(),
            dead: None,
        });
        Ok(())
    }

    /// Adds a job calling `func` on each item of `items` (each item an argument list when
    /// `spec.star`, else the one argument); returns its id.
    pub(crate) fn submit(&self, func: &Func, items: Array, spec: JobSpec) -> Result<u64> {
        self.check_running()?;
        let total = items.len();
        let (job, remote) = {
            let inner = self.0.borrow();
            (inner.sched.next_job_id(), inner.script.is_some())
        };
        let mut tasks = Vec::new();
        let mut index = 0;
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let chunk: Array = items.by_ref().take(spec.chunksize.max(1)).collect();
            let count = chunk.len();
            let message = TaskMsg {
                job,
                index,
                function: func.name.clone(),
                curry: func.curry.clone(),
                items: chunk,
                star: spec.star,
            };
            let bytes = message
                .frame(crate::convert::script_type_name)
                .map_err(|e| {
                    let message = e.message.replace("a message of", "a pool task of");
                    if remote {
                        Error::value(format!("{message}; {}", remote::ONE_MACHINE))
                    } else {
                        Error::value(message)
                    }
                })?;
            tasks.push(Task {
                job,
                index,
                count,
                eager: spec.eager,
                bytes: Rc::new(bytes),
            });
            index += count;
        }
        let bar = (spec.progress && std::io::stderr().is_terminal()).then(|| {
            crate::progress::bar(
                total as u64,
                "pool {pos}/{len} tasks",
                "{elapsed_precise} eta {eta}",
            )
        });
        let added = self
            .0
            .borrow_mut()
            .sched
            .add_job(Job::new(spec.order, spec.whole, total, bar), tasks);
        Ok(added)
    }

    /// Keeps `result` until its job is done and its callbacks have run.
    pub(crate) fn watch(&self, result: AsyncResult) {
        self.0.borrow_mut().watched.push(result);
    }

    /// Forgets a job: its remaining tasks are not sent, the workers skip those they hold,
    /// and replies still to come are dropped.
    pub(crate) fn forget(&self, job: u64) {
        if let Ok(mut inner) = self.0.try_borrow_mut() {
            inner.sched.forget(job);
            inner.post_cancellations();
        }
    }

    /// Lets a job run on with nobody waiting for its results (see [`Scheduler::detach`]).
    pub(crate) fn detach(&self, job: u64) {
        if let Ok(mut inner) = self.0.try_borrow_mut() {
            inner.sched.detach(job);
        }
    }

    /// Whether a job has all its results, or has failed.
    pub(crate) fn job_done(&self, job: u64) -> bool {
        self.0.borrow().sched.job_done(job)
    }

    /// Sends and receives what can be without waiting (and forks replacements and runs due
    /// callbacks with `ctx`).
    pub(crate) fn poke(&self, ctx: Option<&NativeCallContext>) -> RhaiResult<()> {
        self.pump(ctx, Deadline::after(Some(Duration::ZERO)), |_| false)
            .map(|_| ())
    }

    /// Works until `done` holds or the deadline passes; returns whether `done` held.
    fn pump(
        &self,
        ctx: Option<&NativeCallContext>,
        deadline: Deadline,
        mut done: impl FnMut(&Scheduler) -> bool,
    ) -> RhaiResult<bool> {
        self.check_owner()?;
        loop {
            crate::signal::check()?;
            let can_fork = ctx.is_some();
            {
                let mut inner = self.0.borrow_mut();
                inner.exchange();
                if can_fork {
                    inner.retire();
                }
            }
            if let Some(ctx) = ctx {
                self.replace_dead(ctx)?;
                self.run_callbacks(ctx)?;
            }
            let mut fds = {
                let mut inner = self.0.borrow_mut();
                inner.dispatch(can_fork);
                if !can_fork || inner.state == State::Terminated {
                    let message = if inner.state == State::Terminated {
                        "the Pool was terminated before this task finished"
                    } else {
                        "every worker of the Pool has died, and none can be started inside a \
                         `for` loop over imap: call any pool method to start new ones"
                    };
                    inner.sched.fail_if_no_workers(message);
                } else if inner.seats.iter().all(|s| s.given_up) {
                    inner.sched.fail_if_no_workers(
                        "the Pool has no workers left: none of its remote workers could start \
                         (an earlier call raised why), and they are not tried again",
                    );
                }
                if done(&inner.sched) {
                    return Ok(true);
                }
                if inner.workers.iter().any(|w| w.dead.is_some()) {
                    continue;
                }
                if deadline.passed() {
                    return Ok(false);
                }
                inner.poll_fds()
            };
            let mut until = deadline;
            if fds.is_empty() {
                // Nothing to watch (every worker just went): look again soon.
                until = until.min(Deadline::after(Some(Duration::from_millis(50))));
            }
            wait(&mut fds, until, true, || false)?;
        }
    }

    /// Starts workers for the empty seats that are not given up, if the pool still takes
    /// work. A remote worker that cannot even be started (no `ssh` here) gives its seat
    /// up, and a call raises why.
    fn replace_dead(&self, ctx: &NativeCallContext) -> Result<()> {
        loop {
            let seat = {
                let inner = self.0.borrow();
                let wanted = match inner.state {
                    _ if inner.sched.broken().is_some() => false,
                    State::Running => true,
                    State::Closed => !inner.sched.idle(),
                    State::Terminated => false,
                };
                if !wanted {
                    return Ok(());
                }
                let empty = |(i, seat): &(usize, &Seat)| {
                    !seat.given_up && !inner.workers.iter().any(|w| w.seat == *i)
                };
                match inner.seats.iter().enumerate().find(empty) {
                    Some((i, seat)) => (i, matches!(seat.host, Host::Remote(_))),
                    None => return Ok(()),
                }
            };
            match self.spawn_worker(ctx, seat.0) {
                Ok(()) => {}
                Err(e) if seat.1 => {
                    let mut inner = self.0.borrow_mut();
                    inner.seats[seat.0].given_up = true;
                    inner.sched.report(e.to_map());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs the callbacks of the watched results whose jobs are done, one at a time (a
    /// callback may call the pool again); the first error a callback raises is returned.
    pub(crate) fn run_callbacks(&self, ctx: &NativeCallContext) -> RhaiResult<()> {
        loop {
            let due = {
                let mut inner = self.0.borrow_mut();
                let Some(at) = inner
                    .watched
                    .iter()
                    .position(|r| inner.sched.job_done(r.job()))
                else {
                    return Ok(());
                };
                inner.watched.remove(at)
            };
            due.settle();
            due.run_callback(ctx)?;
        }
    }

    /// Waits for a job to finish, at most `timeout`; `Ok(false)` if it did not in time.
    pub(crate) fn wait_job(
        &self,
        ctx: Option<&NativeCallContext>,
        job: u64,
        timeout: Option<Duration>,
    ) -> RhaiResult<bool> {
        self.pump(ctx, Deadline::after(timeout), |sched| sched.job_done(job))
    }

    /// Takes a finished job's results in order, or its error.
    pub(crate) fn take_results(&self, job: u64) -> std::result::Result<Array, Map> {
        self.0.borrow_mut().sched.take_results(job)
    }

    /// The next result of an `imap` job: `Ok(None)` at the end.
    pub(crate) fn next_result(
        &self,
        ctx: Option<&NativeCallContext>,
        job: u64,
        position: usize,
        timeout: Option<Duration>,
    ) -> RhaiResult<Option<Dynamic>> {
        let ready = |sched: &Scheduler| sched.has_next(job, position);
        if !self.pump(ctx, Deadline::after(timeout), ready)? {
            return Err(
                Error::new(ErrorKind::TimeoutError, "no result from the pool in time").into(),
            );
        }
        match self.0.borrow_mut().sched.next_result(job, position) {
            Next::Value(value) => Ok(Some(value)),
            Next::End => Ok(None),
            Next::Failed(error) => Err(raise(error)),
            Next::Waiting => Err(Error::process("the pool lost this result").into()),
        }
    }

    /// `close()`: no new tasks; the workers end once the queued ones are done (`join`).
    pub(crate) fn close(&self) -> Result<()> {
        self.check_owner()?;
        let mut inner = self.0.borrow_mut();
        if inner.state == State::Running {
            inner.state = State::Closed;
        }
        Ok(())
    }

    /// `terminate()`: ends the workers now; calls still waiting fail.
    pub(crate) fn terminate(&self) -> Result<()> {
        self.check_owner()?;
        let (workers, watched) = {
            let mut inner = self.0.borrow_mut();
            inner.state = State::Terminated;
            inner
                .sched
                .terminate("the Pool was terminated before this task finished");
            (
                std::mem::take(&mut inner.workers),
                std::mem::take(&mut inner.watched),
            )
        };
        // Results with callbacks keep the pool alive; dropping them here, outside the
        // borrow, lets it go. Their callbacks do not run, as in Python.
        drop(watched);
        end_workers(workers);
        Ok(())
    }

    /// `join()`: after `close()`, waits for the queued tasks and for the workers to end;
    /// after `terminate()`, waits for the workers to end.
    pub(crate) fn join(&self, ctx: &NativeCallContext) -> RhaiResult<()> {
        self.check_owner()?;
        if self.0.borrow().state == State::Running {
            return Err(pool_error(
                "the Pool is still running: call close() or terminate() before join()",
            )
            .into());
        }
        self.pump(Some(ctx), Deadline::NEVER, Scheduler::idle)?;
        self.run_callbacks(ctx)?;
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
    pub(crate) fn describe(&self) -> String {
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

/// The one place the pool waits: until `done()` holds, one of `fds` is ready, or `until`
/// passes (`None`: no limit), reaping children meanwhile. An `interruptible` wait (for
/// replies) ends with `Interrupted` on Ctrl-C or SIGTERM; the others (for workers to end)
/// run to their end. Returns whether `done()` held.
fn wait(
    fds: &mut [libc::pollfd],
    deadline: Deadline,
    interruptible: bool,
    mut done: impl FnMut() -> bool,
) -> Result<bool> {
    if interruptible {
        // A worker that ends wakes the wait too, through the reaper (its socket may stay
        // open in a sibling that inherited it).
        let reaped = crate::process::wait::reaped_count();
        crate::process::wait::wait_ready_or(fds, deadline, "poll on the pool's workers", || {
            crate::process::wait::reaped_count() != reaped || done()
        })?;
        return Ok(done());
    }
    Ok(crate::process::wait::wait_until(deadline, done))
}

/// SIGTERM, a short grace, then SIGKILL; every worker is reaped before this returns.
fn end_workers(workers: Vec<Worker>) {
    for worker in &workers {
        let _ = worker.process.signal(Signal::SIGTERM);
    }
    let all_ended = || workers.iter().all(|w| w.process.exit().is_some());
    let grace = Deadline::after(Some(Duration::from_secs(2)));
    if !wait(&mut [], grace, false, all_ended).unwrap_or(false) {
        for worker in &workers {
            let _ = worker.process.signal(Signal::SIGKILL);
        }
        let _ = wait(&mut [], Deadline::NEVER, false, all_ended);
    }
}

impl Inner {
    /// Hands out queued tasks and posts cancellations.
    fn dispatch(&mut self, limit: bool) {
        for (id, bytes) in self.sched.dispatch(limit) {
            if let Some(worker) = self.workers.iter_mut().find(|w| w.id == id) {
                worker.out.push_back(bytes);
            }
        }
        self.post_cancellations();
        for worker in &mut self.workers {
            if worker.dead.is_none() {
                worker.write();
            }
        }
    }

    fn post_cancellations(&mut self) {
        for (job, from) in self.sched.take_cancellations() {
            self.board.cancel(job, from);
        }
    }

    /// Writes and reads what the sockets take and hold now; handles replies and deaths.
    fn exchange(&mut self) {
        let mut replies = Vec::new();
        for worker in &mut self.workers {
            if worker.dead.is_none() {
                worker.write();
            }
            // A channel found ended by a write (here or in `dispatch`) may still hold the
            // replies the worker sent before it went: read them too, so that they count.
            if matches!(worker.dead, None | Some(Burial::Ended)) {
                worker.read();
            }
            if let Some(link) = worker.link.as_mut().filter(|l| !l.greeted) {
                match remote::take_hello(&mut worker.input) {
                    Ok(true) => {
                        link.greeted = true;
                        self.reported.remove(&link.host.remote.host);
                    }
                    Ok(false) => continue,
                    Err(reason) => {
                        worker.dead = Some(Burial::Refused(reason));
                        continue;
                    }
                }
            }
            // Replies that arrived before a death still count.
            let mut at = 0;
            loop {
                match pipe::unframe(&worker.input[at..], "a pool worker's socket") {
                    Ok(None) => break,
                    Ok(Some((value, used))) => {
                        at += used;
                        match ReplyMsg::from_value(value) {
                            Ok(ReplyMsg::Print { text }) if worker.link.is_some() => {
                                let pid = worker.process.pid().map_or(0, Pid::as_raw);
                                crate::output::print(&text, || (worker.process.name(), pid));
                            }
                            Ok(ReplyMsg::StartFailed { error }) if worker.link.is_some() => {
                                // It could not take the script: as if it never started.
                                if let Some(link) = worker.link.as_mut() {
                                    link.greeted = false;
                                }
                                let reason = error
                                    .get("message")
                                    .map_or_else(String::new, ToString::to_string);
                                worker.dead = Some(Burial::Refused(reason));
                                break;
                            }
                            Ok(reply) => replies.push((worker.id, reply)),
                            Err(_) => {
                                worker.dead = Some(Burial::Misbehaved);
                                break;
                            }
                        }
                    }
                    Err(_) => {
                        worker.dead = Some(Burial::Misbehaved);
                        break;
                    }
                }
            }
            worker.input.drain(..at);
        }
        for (id, reply) in replies {
            if self.sched.handle_reply(id, reply).is_err() {
                if let Some(worker) = self.workers.iter_mut().find(|w| w.id == id) {
                    worker.dead = Some(Burial::Misbehaved);
                }
            }
        }
        while let Some(w) = self.workers.iter().position(|w| w.dead.is_some()) {
            let worker = self.workers.remove(w);
            self.bury(worker);
        }
        self.post_cancellations();
    }

    /// A worker's channel ended or it misbehaved: reap it and tell the scheduler how it ended.
    fn bury(&mut self, worker: Worker) {
        if matches!(worker.dead, Some(Burial::Misbehaved | Burial::Refused(_))) {
            let _ = worker.process.signal(Signal::SIGKILL);
        }
        let ended = || worker.process.exit().is_some();
        let grace = Deadline::after(Some(Duration::from_secs(2)));
        if !wait(&mut [], grace, false, ended).unwrap_or(false) {
            let _ = worker.process.signal(Signal::SIGKILL);
            let _ = wait(&mut [], Deadline::NEVER, false, ended);
        }
        let exit = worker.process.exit();
        if let Some(link) = &worker.link {
            let refused = match &worker.dead {
                Some(Burial::Refused(reason)) => Some(reason.as_str()),
                _ => None,
            };
            let mut report = false;
            if !link.greeted {
                // It never started: no other is tried in its seat, and its host's failure
                // is raised once.
                self.seats[worker.seat].given_up = true;
                report = self.reported.insert(link.host.remote.host.clone());
            }
            let death = remote::death(&worker.process, link, exit, refused, report);
            self.sched.buried(worker.id, death);
            return;
        }
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
        let pid = worker
            .process
            .pid()
            .map_or_else(|| "?".into(), |p| p.to_string());
        let death = Death::new(
            format!("a pool worker ({}, pid {pid}) {how}", worker.process.name()),
            exit.map(Exit::exitcode),
            Some(self.board.started(worker.id)),
        );
        self.sched.buried(worker.id, death);
    }

    /// Ends the workers that have done their `maxtasksperchild` tasks: closing the socket
    /// ends a worker, and the reaper collects it.
    fn retire(&mut self) {
        for id in self.sched.retiring() {
            self.sched.remove_worker(id);
            if let Some(w) = self.workers.iter().position(|w| w.id == id) {
                self.workers.remove(w);
            }
        }
    }

    /// What to wait for: replies and ends on every socket, room on those with bytes to go.
    fn poll_fds(&self) -> Vec<libc::pollfd> {
        self.workers
            .iter()
            .map(|w| libc::pollfd {
                fd: w.fd.as_raw_fd(),
                events: if w.out.is_empty() {
                    libc::POLLIN
                } else {
                    libc::POLLIN | libc::POLLOUT
                },
                revents: 0,
            })
            .collect()
    }
}

impl Worker {
    /// Writes what the socket takes now.
    fn write(&mut self) {
        while let Some(front) = self.out.front() {
            match nix::sys::socket::send(
                self.fd.as_raw_fd(),
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
                    self.dead = Some(Burial::Ended);
                    return;
                }
            }
        }
    }

    /// Reads what the socket holds now.
    fn read(&mut self) {
        // One buffer per worker, zeroed once: zeroing 64 KiB at every look cost more than
        // the look.
        if self.scratch.is_empty() {
            self.scratch = vec![0u8; 64 * 1024];
        }
        loop {
            match nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut self.scratch,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(0) => {
                    self.dead = Some(Burial::Ended);
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&self.scratch[..n]),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    self.dead = Some(Burial::Ended);
                    break;
                }
            }
        }
    }
}

/// Turns a caught error map into an error the script can catch.
pub(crate) fn raise(map: Map) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from_map(map), Position::NONE).into()
}
