//! Processes, as Python's `multiprocessing.Process` has them: a handle made first, started
//! with a real `fork()`, joined for its exit code.
//!
//! Lifecycle policy, enforced here:
//! - a name is numbered when the handle is made (`Process-1`, and `Process-1:2` for a child's
//!   child), as CPython does;
//! - starting takes the target and its arguments out of the parent's handle, so that what
//!   was handed to the child (a socket, say) closes in the parent once the script lets go;
//! - finished children are reaped at once by [`wait`], and their exit codes kept until asked;
//! - when a process ends (the main script or a child), its daemon children get SIGTERM and
//!   then all of its children are waited for ([`finish_children`]).

#[allow(unsafe_code)] // the child's side of exec: dup2, execve, _exit
pub(crate) mod exec;
#[allow(unsafe_code)] // fork, the child's setup, _exit
pub(crate) mod fork;
#[allow(unsafe_code)] // moving the code onto huge pages: mmap, mremap
pub(crate) mod hugetext;
pub(crate) mod max_procs;
pub(crate) mod package;
#[allow(unsafe_code)] // the reaper: pidfds, waitid, epoll and the SIGCHLD handler
pub(crate) mod wait;

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use rhai::{Dynamic, FnPtr};

use crate::error::{Error, Result};
use crate::sys::Deadline;
use fork::ChildSetup;
use wait::{Exit, SlotId};

/// What a started process runs. Held only until `start`.
#[derive(Clone)]
pub(crate) enum Job {
    /// Call a function (by name, `Fn`, or closure) with positional arguments.
    Call {
        /// The function.
        target: FnPtr,
        /// Its arguments, keyword arguments already put in place.
        args: Vec<Dynamic>,
    },
    /// Call the `run` closure of an object map with `this` bound to a copy of the map.
    Object(Dynamic),
    /// Run a program (see [`exec`]).
    Command(exec::Command),
}

/// Where a handle is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Made, not started.
    Initial,
    /// Started and not yet seen to end.
    Running { pid: Pid, slot: SlotId },
    /// Ended; `None` if something outside procscript took its exit status.
    Exited { pid: Pid, exit: Option<Exit> },
    /// The process this code runs in (`current_process()`).
    Current { pid: Pid },
    /// This process's parent (`parent_process()`).
    Parent { pid: Pid },
}

struct Inner {
    name: String,
    daemon: bool,
    identity: Vec<u32>,
    /// The process that made the handle: only it may start, join or test it.
    creator: Pid,
    state: State,
    job: Option<Job>,
    /// What it runs, for messages: a function name, `run`, or `spawn`.
    label: String,
    die_with_parent: Option<bool>,
    limits: Limits,
    /// What another module keeps with the handle (a command's pipes).
    attachment: Option<Rc<dyn Any>>,
    /// The authentication key, inherited from the process that made the handle.
    authkey: Rc<[u8]>,
    /// `p.sentinel`: a descriptor that becomes readable when the process ends.
    sentinel: Option<OwnedFd>,
    /// Set by `close()`: most methods then fail with `ValueError`.
    closed: bool,
}

/// A handle on a process; clones share one state, as Python objects do.
#[derive(Clone)]
pub struct Process(Rc<RefCell<Inner>>);

/// This process's own identity, inherited and then adjusted by each child.
struct Me {
    pid: Pid,
    name: String,
    identity: Vec<u32>,
    daemon: bool,
    counter: u32,
    parent: Option<(String, Pid)>,
    current: Option<Process>,
    /// Started children not yet seen to end, by their reaper entry.
    children: HashMap<SlotId, Process>,
    /// This process's authentication key, made (32 random bytes) when first needed in the
    /// main process, inherited by children.
    authkey: Option<Rc<[u8]>>,
}

/// In a new script child: becomes the process of the handle `current`, with no children
/// of its own yet. The parent's table of children is forgotten without being dropped
/// (dropping would run the handles' destructors on the parent's resources).
pub(crate) fn become_child(current: Process, pid: Pid) {
    let (name, identity, daemon, authkey) = {
        let mut inner = current.0.borrow_mut();
        inner.state = State::Current { pid };
        (
            inner.name.clone(),
            inner.identity.clone(),
            inner.daemon,
            inner.authkey.clone(),
        )
    };
    ME.with(|me| {
        let mut me = me.borrow_mut();
        let parent = (std::mem::take(&mut me.name), me.pid);
        std::mem::forget(std::mem::take(&mut me.children));
        *me = Me {
            pid,
            name,
            identity,
            daemon,
            counter: 0,
            parent: Some(parent),
            current: Some(current),
            children: HashMap::new(),
            authkey: Some(authkey),
        };
    });
}

/// This process's authentication key (made now in the main process if it has none yet).
fn my_authkey() -> Rc<[u8]> {
    ME.with(|me| {
        me.borrow_mut()
            .authkey
            .get_or_insert_with(|| {
                let mut key = [0u8; 32];
                crate::sys::fd::fill_random(&mut key);
                Rc::from(&key[..])
            })
            .clone()
    })
}

thread_local! {
    static ME: RefCell<Me> = RefCell::new(Me {
        pid: nix::unistd::getpid(),
        name: "MainProcess".into(),
        identity: Vec::new(),
        daemon: false,
        counter: 0,
        parent: None,
        current: None,
        children: HashMap::new(),
        authkey: None,
    });
}

/// Options for a new process.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Its name; `Process-N` when `None`.
    pub name: Option<String>,
    /// Whether it is ended (SIGTERM) rather than waited for when its parent finishes.
    pub daemon: Option<bool>,
    /// Whether it is killed when its parent dies, even by SIGKILL (`PR_SET_PDEATHSIG`);
    /// `None` means "if it is a daemon".
    pub die_with_parent: Option<bool>,
    /// Resource limits applied in the child with `setrlimit`.
    pub limits: Limits,
}

/// Resource limits for a child, applied with `setrlimit` before it runs its target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    /// CPU seconds (`RLIMIT_CPU`): SIGXCPU at the limit, SIGKILL a second later.
    pub cpu_secs: Option<u64>,
    /// Address space in bytes (`RLIMIT_AS`): allocations past it fail.
    pub memory_bytes: Option<u64>,
    /// Open descriptors (`RLIMIT_NOFILE`): opening more fails with errno 24 (EMFILE).
    pub open_files: Option<u64>,
}

impl Limits {
    /// Applies the limits to the calling process.
    pub(crate) fn apply(&self) -> std::result::Result<(), String> {
        use nix::sys::resource::{setrlimit, Resource};
        let set = |resource: Resource, soft: u64, hard: u64, what: &str| {
            setrlimit(resource, soft, hard)
                .map_err(|e| format!("cannot limit {what} to {soft}: {}", e.desc()))
        };
        if let Some(secs) = self.cpu_secs {
            set(
                Resource::RLIMIT_CPU,
                secs,
                secs.saturating_add(1),
                "cpu_secs",
            )?;
        }
        if let Some(bytes) = self.memory_bytes {
            set(Resource::RLIMIT_AS, bytes, bytes, "memory_bytes")?;
        }
        if let Some(files) = self.open_files {
            set(Resource::RLIMIT_NOFILE, files, files, "open_files")?;
        }
        Ok(())
    }
}

/// The cap asked for with [`set_max_children`] (0: none).
static MAX_LIVE_CHILDREN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Caps the live processes of the whole run, the main process aside (`--max-procs`): a
/// `start` past the cap, in any process of the tree, is a `ProcessError`. 0 means no cap.
/// Call it before the first process starts (see [`max_procs`]).
pub(crate) fn set_max_children(max: usize) {
    MAX_LIVE_CHILDREN.store(max, std::sync::atomic::Ordering::Relaxed);
    if let Err(e) = max_procs::set(max) {
        let _ =
            crate::output::write_line(crate::output::Stream::Stderr, &format!("procscript: {e}"));
    }
}

/// Takes a place for `what` under the `--max-procs` cap of the whole run (the script's
/// children, their children, and the programs `run()` and `pipeline()` start count alike),
/// or refuses the start. `None` when there is no cap.
pub(crate) fn check_room(what: &str) -> Result<Option<max_procs::Ticket>> {
    if MAX_LIVE_CHILDREN.load(std::sync::atomic::Ordering::Relaxed) > 0
        && max_procs::cap().is_none()
    {
        return Err(Error::process(
            "cannot start a process: the --max-procs table could not be set up",
        ));
    }
    max_procs::claim(what)
}

/// A program that `run()` or `pipeline()` started as `pid`: it holds the `--max-procs`
/// place `ticket` and counts for `--progress` until [`program_ended`].
pub(crate) fn program_started(ticket: Option<max_procs::Ticket>, pid: Pid) {
    if let Some(ticket) = ticket {
        ticket.started(pid);
    }
    crate::progress::started();
}

/// A program counted by [`program_started`] has ended and was reaped.
pub(crate) fn program_ended(pid: Pid) {
    max_procs::collected(pid);
    crate::progress::finished();
}

impl Process {
    /// A new, unstarted process that will run `job`.
    pub(crate) fn new(job: Option<Job>, label: impl Into<String>, options: Options) -> Self {
        let (identity, creator, inherited_daemon) = ME.with(|me| {
            let mut me = me.borrow_mut();
            me.counter += 1;
            let mut identity = me.identity.clone();
            identity.push(me.counter);
            (identity, me.pid, me.daemon)
        });
        let name = options.name.unwrap_or_else(|| {
            let numbers: Vec<String> = identity.iter().map(u32::to_string).collect();
            format!("Process-{}", numbers.join(":"))
        });
        Self(Rc::new(RefCell::new(Inner {
            name,
            daemon: options.daemon.unwrap_or(inherited_daemon),
            identity,
            creator,
            state: State::Initial,
            job,
            label: label.into(),
            die_with_parent: options.die_with_parent,
            limits: options.limits,
            attachment: None,
            authkey: my_authkey(),
            sentinel: None,
            closed: false,
        })))
    }

    /// The handle of the process this code runs in.
    pub fn current() -> Self {
        my_authkey();
        ME.with(|me| {
            let me = me.borrow();
            me.current.clone().unwrap_or_else(|| {
                Self(Rc::new(RefCell::new(Inner {
                    name: me.name.clone(),
                    daemon: me.daemon,
                    identity: me.identity.clone(),
                    creator: Pid::from_raw(0),
                    state: State::Current { pid: me.pid },
                    job: None,
                    label: String::new(),
                    die_with_parent: None,
                    limits: Limits::default(),
                    attachment: None,
                    authkey: me.authkey.clone().unwrap_or_else(|| Rc::from(&[][..])),
                    sentinel: None,
                    closed: false,
                })))
            })
        })
    }

    /// The handle of this process's parent, `None` in the main process.
    pub fn parent() -> Option<Self> {
        ME.with(|me| {
            let me = me.borrow();
            let (name, pid) = me.parent.clone()?;
            Some(Self(Rc::new(RefCell::new(Inner {
                name,
                daemon: false,
                identity: Vec::new(),
                creator: Pid::from_raw(0),
                state: State::Parent { pid },
                job: None,
                label: String::new(),
                die_with_parent: None,
                limits: Limits::default(),
                attachment: None,
                authkey: Rc::from(&[][..]),
                sentinel: None,
                closed: false,
            }))))
        })
    }

    /// The process's name.
    pub fn name(&self) -> String {
        self.0.borrow().name.clone()
    }

    /// Renames the process (in this process's view, as in Python).
    pub(crate) fn set_name(&self, name: String) {
        let mut inner = self.0.borrow_mut();
        if matches!(inner.state, State::Current { .. }) {
            // Renaming this process: its error banner and `--label` prefix follow.
            ME.with(|me| me.borrow_mut().name = name.clone());
        }
        inner.name = name;
    }

    /// Whether it is a daemon.
    pub fn daemon(&self) -> bool {
        self.0.borrow().daemon
    }

    /// Sets the daemon flag; only before start.
    pub(crate) fn set_daemon(&self, daemon: bool) -> Result<()> {
        let mut inner = self.0.borrow_mut();
        if inner.state != State::Initial {
            return Err(Error::process(
                "cannot change `daemon` of a process that has already started",
            ));
        }
        inner.daemon = daemon;
        Ok(())
    }

    /// Its pid, once started.
    pub fn pid(&self) -> Option<Pid> {
        match self.0.borrow().state {
            State::Initial => None,
            State::Running { pid, .. }
            | State::Exited { pid, .. }
            | State::Current { pid }
            | State::Parent { pid } => Some(pid),
        }
    }

    /// Python's `exitcode`: `None` until the process is known to have ended.
    pub fn exitcode(&self) -> Option<i64> {
        collect();
        match self.0.borrow().state {
            State::Exited { exit, .. } => exit.map(Exit::exitcode),
            _ => None,
        }
    }

    /// How it ended, once it has.
    pub(crate) fn exit(&self) -> Option<Exit> {
        collect();
        match self.0.borrow().state {
            State::Exited { exit, .. } => exit,
            _ => None,
        }
    }

    fn ensure_mine(&self, verb: &str) -> Result<()> {
        let inner = self.0.borrow();
        match inner.state {
            State::Current { .. } => {
                Err(Error::process(format!("cannot {verb} the current process")))
            }
            State::Parent { .. } => Err(Error::process(format!(
                "can only {verb} a child process, not the parent"
            ))),
            _ if inner.creator != my_pid() => Err(Error::process(format!(
                "can only {verb} a child process: `{}` was made by process {}, this is {}",
                inner.name,
                inner.creator,
                my_pid()
            ))),
            _ => Ok(()),
        }
    }

    /// A copy of what the process will run, `None` once started (for `p.run()`).
    pub(crate) fn job(&self) -> Option<Job> {
        self.0.borrow().job.clone()
    }

    /// Checks that `start` may be called, and takes the job out of the handle.
    ///
    /// Python's checks, as real errors: not twice, only by the process that made the
    /// handle, and not in a daemon (whose children would be orphaned when it is ended).
    pub(crate) fn take_job_for_start(&self) -> Result<Option<Job>> {
        self.check_closed()?;
        let mut inner = self.0.borrow_mut();
        if inner.state != State::Initial {
            return Err(Error::process(format!(
                "cannot start a process twice (`{}`)",
                inner.name
            )));
        }
        if inner.creator != my_pid() {
            return Err(Error::process(format!(
                "can only start a process object created by the current process (`{}`)",
                inner.name
            )));
        }
        if ME.with(|me| me.borrow().daemon) {
            return Err(Error::process(
                "daemonic processes are not allowed to have children",
            ));
        }
        Ok(inner.job.take())
    }

    /// Forks: the child runs `body` (which returns its exit code) after its children have
    /// been reset and then waits for its own children; the parent records the child.
    ///
    /// Call [`Process::take_job_for_start`] first.
    pub(crate) fn fork(&self, body: impl FnOnce() -> i32) -> Result<Pid> {
        self.fork_closing(Vec::new(), body)
    }

    /// [`Process::fork`] whose child first closes `close`: the parent's ends of what it
    /// shares with the child (a pool closes its ends of the workers' sockets), so that the
    /// child sees end of file when the parent goes.
    pub(crate) fn fork_closing(
        &self,
        close: Vec<RawFd>,
        body: impl FnOnce() -> i32,
    ) -> Result<Pid> {
        collect();
        let ticket = self.check_room()?;
        let setup = self.setup(ChildSetup::script(self)).close(close);
        let child_body = || {
            let code = body();
            if crate::signal::pending().is_none() {
                finish_children();
            }
            // Stopped by SIGTERM or SIGINT with children of its own (also while waiting for
            // them at its end): they end first (the signal passed on, a grace period, then
            // SIGKILL), then this process ends by the signal, as it would have without
            // children.
            if let Some(signal) = crate::signal::pending() {
                end_children(signal);
                fork::die_by(signal);
            }
            code
        };
        let (pid, slot) = fork::fork_and_run(setup, child_body)?;
        if let Some(ticket) = ticket {
            ticket.started(pid);
        }
        self.record_start(pid, slot);
        Ok(pid)
    }

    /// `setup` with this handle's die-with-parent choice and limits.
    fn setup(&self, setup: ChildSetup) -> ChildSetup {
        let inner = self.0.borrow();
        let die = inner.die_with_parent.unwrap_or(inner.daemon);
        setup
            .die_with_parent(die.then_some(Signal::SIGKILL))
            .limits(inner.limits)
    }

    /// The parent's bookkeeping for a child just forked: state, progress, trace, children.
    fn record_start(&self, pid: Pid, slot: SlotId) {
        self.0.borrow_mut().state = State::Running { pid, slot };
        crate::progress::started();
        if crate::trace::enabled() {
            let inner = self.0.borrow();
            crate::trace::spawned(pid.as_raw(), &inner.name, &inner.label);
        }
        ME.with(|me| me.borrow_mut().children.insert(slot, self.clone()));
    }

    /// Forks a child that applies `setup` (a program's, see [`exec`]) and runs `body` at
    /// once: for a child that only replaces itself with a program. The parent records the
    /// child as [`Process::fork`] does.
    ///
    /// Call [`Process::take_job_for_start`] first.
    pub(crate) fn fork_program(
        &self,
        setup: ChildSetup,
        body: impl FnOnce() -> i32,
    ) -> Result<Pid> {
        collect();
        let ticket = self.check_room()?;
        let (pid, slot) = fork::fork_and_run(self.setup(setup), body)?;
        if let Some(ticket) = ticket {
            ticket.started(pid);
        }
        self.record_start(pid, slot);
        Ok(pid)
    }

    /// What another module attached to this handle, if it is a `T`.
    pub(crate) fn attachment<T: 'static>(&self) -> Option<Rc<T>> {
        self.0.borrow().attachment.clone()?.downcast::<T>().ok()
    }

    /// Attaches `value` to the handle (and to its clones), replacing any earlier one.
    pub(crate) fn set_attachment(&self, value: Rc<dyn Any>) {
        self.0.borrow_mut().attachment = Some(value);
    }

    /// Takes a place under the `--max-procs` cap of the whole run, or refuses the start.
    fn check_room(&self) -> Result<Option<max_procs::Ticket>> {
        check_room(&self.name())
    }

    /// Waits for the process to end, at most `timeout`; returns its exit code, or `None` if
    /// the timeout passed first.
    pub fn join(&self, timeout: Option<Duration>) -> Result<Option<i64>> {
        self.check_closed()?;
        self.ensure_mine("join")?;
        let slot = match self.0.borrow().state {
            State::Initial => {
                return Err(Error::process(format!(
                    "can only join a started process (`{}` was never started)",
                    self.name()
                )))
            }
            State::Running { slot, .. } => Some(slot),
            _ => None,
        };
        let ended = match slot {
            Some(slot) => {
                wait::wait_until_or_signal(Deadline::after(timeout), || wait::has_exited(slot))?
            }
            None => true,
        };
        let code = self.exitcode();
        if ended && crate::trace::enabled() {
            if let Some(pid) = self.pid() {
                let event = crate::trace::Event::Join {
                    t: crate::trace::now(),
                    pid: pid.as_raw(),
                    by: my_pid().as_raw(),
                };
                crate::trace::record(&event);
            }
        }
        Ok(code)
    }

    /// Whether the process is running.
    pub fn is_alive(&self) -> Result<bool> {
        match self.0.borrow().state {
            State::Current { .. } => return Ok(true),
            State::Parent { pid } => return Ok(nix::unistd::getppid() == pid),
            _ => {}
        }
        self.check_closed()?;
        self.ensure_mine("test")?;
        collect();
        Ok(matches!(self.0.borrow().state, State::Running { .. }))
    }

    /// Sends `signal` if the process is still running (a no-op once it has ended).
    pub(crate) fn signal(&self, signal: Signal) -> Result<()> {
        let verb = match signal {
            Signal::SIGKILL => "kill",
            _ => "terminate",
        };
        self.check_closed()?;
        self.ensure_mine(verb)?;
        match self.0.borrow().state {
            State::Initial => Err(Error::process(format!(
                "cannot {verb} `{}`: it was never started",
                self.0.borrow().name
            ))),
            State::Running { pid, slot } if !wait::has_exited(slot) => {
                // Through the pidfd: never a stranger that reused the pid.
                if crate::trace::enabled() && signal != Signal::SIGCONT {
                    let (t, target, by) = (crate::trace::now(), pid.as_raw(), my_pid().as_raw());
                    crate::trace::record(&match signal {
                        Signal::SIGKILL => crate::trace::Event::Kill { t, pid: target, by },
                        _ => crate::trace::Event::Terminate { t, pid: target, by },
                    });
                }
                wait::send_signal(slot, signal)
                    .map_err(|e| Error::os(format_args!("{verb} process {pid}"), e))
            }
            _ => Ok(()),
        }
    }

    fn is_started_child(&self) -> bool {
        matches!(self.0.borrow().state, State::Running { .. })
    }

    /// Fails with `ValueError` once [`Process::close`] has been called, as Python does.
    pub(crate) fn check_closed(&self) -> Result<()> {
        let inner = self.0.borrow();
        if inner.closed {
            return Err(Error::value(format!(
                "process object `{}` is closed",
                inner.name
            )));
        }
        Ok(())
    }

    /// Python's `close()`: releases what the handle holds (its sentinel, a command's pipes).
    /// A `ValueError` while the process runs; afterwards most methods raise `ValueError`.
    /// Closing twice does nothing.
    pub(crate) fn close(&self) -> Result<()> {
        collect();
        if self.0.borrow().closed {
            return Ok(());
        }
        if let State::Running { .. } = self.0.borrow().state {
            return Err(Error::value(format!(
                "cannot close `{}` while it is still running: join() or terminate() it first",
                self.name()
            )));
        }
        exec::release_pipes(self);
        let mut inner = self.0.borrow_mut();
        inner.sentinel = None;
        inner.attachment = None;
        inner.closed = true;
        Ok(())
    }

    /// Python's `sentinel`: a descriptor that becomes readable when the process ends, and
    /// stays readable after. It is a duplicate of the child's pidfd, owned by the handle
    /// (closed by `close()` or when the last copy of the handle goes).
    pub(crate) fn sentinel(&self) -> Result<RawFd> {
        self.check_closed()?;
        if let Some(fd) = &self.0.borrow().sentinel {
            return Ok(fd.as_raw_fd());
        }
        // A child reaped during a wait (its pidfd closed) but not yet marked ended gets an
        // ended sentinel, not ESRCH from duplicating the closed pidfd.
        collect();
        let state = self.0.borrow().state;
        let fd = match state {
            State::Running { slot, .. } => wait::dup_pidfd(slot)
                .map_err(|e| Error::os(format_args!("make a sentinel for `{}`", self.name()), e))?,
            State::Exited { .. } => ended_sentinel()?,
            _ => {
                return Err(Error::value(format!(
                    "`{}` has no sentinel: it is not a started child",
                    self.name()
                )))
            }
        };
        let raw = fd.as_raw_fd();
        self.0.borrow_mut().sentinel = Some(fd);
        Ok(raw)
    }

    /// The authentication key (Python's `authkey`): inherited from the process that made
    /// the handle; the main process's is 32 random bytes.
    pub(crate) fn authkey(&self) -> Rc<[u8]> {
        let inner = self.0.borrow();
        if let State::Current { .. } = inner.state {
            return my_authkey();
        }
        inner.authkey.clone()
    }

    /// Sets the authentication key; for `current_process()`, this process's own (which its
    /// children then inherit).
    pub(crate) fn set_authkey(&self, key: &[u8]) {
        let key: Rc<[u8]> = Rc::from(key);
        let mut inner = self.0.borrow_mut();
        if let State::Current { .. } = inner.state {
            ME.with(|me| me.borrow_mut().authkey = Some(key.clone()));
        }
        inner.authkey = key;
    }
}

/// A descriptor that is readable at once: the read end of a pipe whose write end is closed
/// (the sentinel of a process that ended before anyone asked for one).
fn ended_sentinel() -> Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::os("make a sentinel", e))?;
    drop(write);
    Ok(read)
}

impl fmt::Display for Process {
    /// Python's repr: `<Process name='Process-1' pid=4242 parent=4241 started>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        collect();
        let inner = self.0.borrow();
        write!(f, "<Process name='{}'", inner.name)?;
        match inner.state {
            State::Initial => write!(f, " parent={} initial", inner.creator)?,
            State::Running { pid, .. } => write!(f, " pid={pid} parent={} started", inner.creator)?,
            State::Exited { pid, exit } => {
                write!(f, " pid={pid} parent={} stopped exitcode=", inner.creator)?;
                match exit {
                    Some(Exit::Code(code)) => write!(f, "{code}")?,
                    Some(Exit::Signal(sig)) => match Signal::try_from(sig) {
                        Ok(s) => write!(f, "-{}", s.as_str())?,
                        Err(_) => write!(f, "-{sig}")?,
                    },
                    None => f.write_str("unknown")?,
                }
            }
            State::Current { pid } => write!(f, " pid={pid} current")?,
            State::Parent { pid } => write!(f, " pid={pid} parent")?,
        }
        if inner.daemon {
            f.write_str(" daemon")?;
        }
        if inner.closed {
            f.write_str(" closed")?;
        }
        f.write_str(">")
    }
}

/// Makes what forking needs (the reaper's epoll set, `/dev/null` for children's stdin) now
/// rather than at the first fork, so that a process's descriptor count does not change once
/// it starts forking (the runtime calls it).
pub(crate) fn prepare() {
    wait::prepare();
    fork::prepare();
}

/// Whether this process is a child procscript started (not the main process).
pub(crate) fn is_child_process() -> bool {
    ME.with(|me| me.borrow().parent.is_some())
}

/// This process's pid, as procscript tracks it (one `getpid` per fork, not per call).
pub(crate) fn my_pid() -> Pid {
    ME.with(|me| me.borrow().pid)
}

/// This process's name (`MainProcess`, `Process-1`, ...).
pub(crate) fn my_name() -> String {
    ME.with(|me| me.borrow().name.clone())
}

/// Moves the exit statuses the reaper has gathered into their handles: only those of
/// children that ended since the last look, so the cost does not grow with live children.
pub(crate) fn collect() {
    wait::reap_if_signalled();
    let ended = wait::take_newly_exited();
    if ended.is_empty() {
        return;
    }
    ME.with(|me| {
        let mut me = me.borrow_mut();
        for id in ended {
            // Not ours if absent: a program that `run()` started, which takes its own exit.
            let Some(child) = me.children.remove(&id) else {
                continue;
            };
            let mut inner = child.0.borrow_mut();
            let State::Running { pid, slot } = inner.state else {
                continue;
            };
            if let Some(reaped) = wait::take_exit(slot) {
                max_procs::collected(pid);
                inner.state = State::Exited {
                    pid,
                    exit: reaped.exit,
                };
                crate::progress::finished();
                reaped.trace(pid.as_raw());
            }
        }
    });
}

/// The started children that have not ended, as `active_children()` reports them, in the
/// order they were made.
pub(crate) fn active_children() -> Vec<Process> {
    collect();
    let mut children: Vec<Process> = ME.with(|me| me.borrow().children.values().cloned().collect());
    children.sort_by_key(|child| child.0.borrow().identity.last().copied());
    children
}

/// The end of a process: daemon children get SIGTERM, then every child is waited for
/// (CPython's exit handler does the same, in this order).
pub(crate) fn finish_children() {
    for child in active_children() {
        // Nothing reads or writes a program's pipes any more: let it see end of file.
        exec::release_pipes(&child);
        if child.daemon() {
            let _ = child.signal(Signal::SIGTERM);
        }
    }
    for child in active_children() {
        if child.is_started_child() {
            let _ = child.join(None);
        }
    }
}

/// Sends `signal` to every running child (Ctrl-C and SIGTERM handling).
pub(crate) fn signal_children(signal: Signal) {
    for child in active_children() {
        let _ = child.signal(signal);
    }
}

/// How long children get to end after a termination signal is passed on, before SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// Ends the children after this process was stopped by `signal` (Ctrl-C or SIGTERM): pass
/// it on, wait up to [`GRACE`] (less in a child), then SIGKILL what is left, and reap everything. A child
/// with children of its own does the same before it ends, so the signal reaches the whole
/// tree and each process ends its own children first.
pub(crate) fn end_children(signal: Signal) {
    signal_children(signal);
    // A stopped child acts on the signal only once continued (a shell's `kill` does this too).
    signal_children(Signal::SIGCONT);
    // A child's own children get half the time its parent gives it, and theirs half again,
    // so that each level has ended its children before its parent's grace runs out.
    let depth = ME.with(|me| me.borrow().identity.len()).min(16) as i32;
    let deadline = Deadline::after(Some(GRACE.mul_f64(0.5f64.powi(depth))));
    if !wait::wait_until(deadline, || active_children().is_empty()) {
        signal_children(Signal::SIGKILL);
        // SIGKILL cannot be caught: this wait ends, and reaps them all.
        wait::wait_until(Deadline::NEVER, || active_children().is_empty());
    }
}
