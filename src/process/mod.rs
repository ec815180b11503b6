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

pub mod fork;
pub mod max_procs;
pub mod package;
pub mod wait;

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use rhai::{Dynamic, FnPtr};

use crate::error::{Error, Result};
use wait::{Exit, SlotId};

/// What a started process runs. Held only until `start`.
#[derive(Clone)]
pub enum Job {
    /// Call a function (by name, `Fn`, or closure) with positional arguments.
    Call {
        /// The function.
        target: FnPtr,
        /// Its arguments, keyword arguments already put in place.
        args: Vec<Dynamic>,
    },
    /// Call the `run` closure of an object map with `this` bound to a copy of the map.
    Object(Dynamic),
    /// Run a program (see [`crate::command`]).
    Command(crate::command::Command),
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
    });
}

/// Options for a new process.
#[derive(Debug, Clone, Default)]
pub struct Options {
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
pub struct Limits {
    /// CPU seconds (`RLIMIT_CPU`): SIGXCPU at the limit, SIGKILL a second later.
    pub cpu_secs: Option<u64>,
    /// Address space in bytes (`RLIMIT_AS`): allocations past it fail.
    pub memory_bytes: Option<u64>,
    /// Open descriptors (`RLIMIT_NOFILE`): opening more fails with errno 24 (EMFILE).
    pub open_files: Option<u64>,
}

impl Limits {
    /// Applies the limits to the calling process.
    fn apply(&self) -> std::result::Result<(), String> {
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
pub fn set_max_children(max: usize) {
    MAX_LIVE_CHILDREN.store(max, std::sync::atomic::Ordering::Relaxed);
    if let Err(e) = max_procs::set(max) {
        let _ =
            crate::output::write_line(crate::output::Stream::Stderr, &format!("procscript: {e}"));
    }
}

/// The cap set by [`set_max_children`], if any.
pub fn max_children() -> Option<usize> {
    match MAX_LIVE_CHILDREN.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        n => Some(max_procs::cap().unwrap_or(n)),
    }
}

impl Process {
    /// A new, unstarted process that will run `job`.
    pub fn new(job: Option<Job>, label: impl Into<String>, options: Options) -> Self {
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
        })))
    }

    /// The handle of the process this code runs in.
    pub fn current() -> Self {
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
            }))))
        })
    }

    /// The process's name.
    pub fn name(&self) -> String {
        self.0.borrow().name.clone()
    }

    /// Renames the process (in this process's view, as in Python).
    pub fn set_name(&self, name: String) {
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
    pub fn set_daemon(&self, daemon: bool) -> Result<()> {
        let mut inner = self.0.borrow_mut();
        if inner.state != State::Initial {
            return Err(Error::process(
                "cannot change `daemon` of a process that has already started",
            ));
        }
        inner.daemon = daemon;
        Ok(())
    }

    /// What the process runs, for messages and traces.
    pub fn label(&self) -> String {
        self.0.borrow().label.clone()
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
    pub fn exit(&self) -> Option<Exit> {
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
    pub fn job(&self) -> Option<Job> {
        self.0.borrow().job.clone()
    }

    /// Checks that `start` may be called, and takes the job out of the handle.
    ///
    /// Python's checks, as real errors: not twice, only by the process that made the
    /// handle, and not in a daemon (whose children would be orphaned when it is ended).
    pub fn take_job_for_start(&self) -> Result<Option<Job>> {
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
    pub fn fork(&self, body: impl FnOnce() -> i32) -> Result<Pid> {
        collect();
        let ticket = self.check_room()?;
        let parent = ME.with(|me| {
            let me = me.borrow();
            (me.name.clone(), me.pid)
        });
        let child_setup = || {
            let pid = nix::unistd::getpid();
            let (name, identity, daemon, die_with_parent, limits) = {
                let mut inner = self.0.borrow_mut();
                inner.state = State::Current { pid };
                let die = inner.die_with_parent.unwrap_or(inner.daemon);
                let name = inner.name.clone();
                (
                    name,
                    inner.identity.clone(),
                    inner.daemon,
                    die,
                    inner.limits,
                )
            };
            apply_in_child(&name, die_with_parent, parent.1, limits);
            ME.with(|me| {
                let mut me = me.borrow_mut();
                std::mem::forget(std::mem::take(&mut me.children));
                *me = Me {
                    pid,
                    name,
                    identity,
                    daemon,
                    counter: 0,
                    parent: Some(parent.clone()),
                    current: Some(self.clone()),
                    children: HashMap::new(),
                };
            });
            fastrand::seed(fresh_seed(pid));
            crate::signal::reset_in_child();
            crate::progress::forget_in_child();
            redirect_stdin_to_null();
        };
        let child_body = || {
            let code = body();
            finish_children();
            code
        };
        let (pid, slot) = fork::fork_and_run(child_setup, child_body)?;
        if let Some(ticket) = ticket {
            ticket.started(pid);
        }
        self.record_start(pid, slot);
        Ok(pid)
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

    /// Forks a child that runs `setup` (with signals blocked) and `body` at once, without a
    /// script child's setup: for a child that only replaces itself with a program (see
    /// [`crate::command`]). The parent records the child as [`Process::fork`] does.
    ///
    /// Call [`Process::take_job_for_start`] first.
    pub fn fork_exec(&self, setup: impl FnOnce(), body: impl FnOnce() -> i32) -> Result<Pid> {
        collect();
        let ticket = self.check_room()?;
        let parent = my_pid();
        let (name, die_with_parent, limits) = {
            let inner = self.0.borrow();
            (
                inner.name.clone(),
                inner.die_with_parent.unwrap_or(inner.daemon),
                inner.limits,
            )
        };
        let setup = || {
            // Both survive exec: the program runs with the limits, and dies with us.
            apply_in_child(&name, die_with_parent, parent, limits);
            setup();
        };
        let (pid, slot) = fork::fork_and_run(setup, body)?;
        if let Some(ticket) = ticket {
            ticket.started(pid);
        }
        self.record_start(pid, slot);
        Ok(pid)
    }

    /// What another module attached to this handle, if it is a `T`.
    pub fn attachment<T: 'static>(&self) -> Option<Rc<T>> {
        self.0.borrow().attachment.clone()?.downcast::<T>().ok()
    }

    /// Attaches `value` to the handle (and to its clones), replacing any earlier one.
    pub fn set_attachment(&self, value: Rc<dyn Any>) {
        self.0.borrow_mut().attachment = Some(value);
    }

    /// Takes a place under the `--max-procs` cap of the whole run, or refuses the start.
    fn check_room(&self) -> Result<Option<max_procs::Ticket>> {
        if MAX_LIVE_CHILDREN.load(std::sync::atomic::Ordering::Relaxed) > 0
            && max_procs::cap().is_none()
        {
            return Err(Error::process(
                "cannot start a process: the --max-procs table could not be set up",
            ));
        }
        max_procs::claim(&self.name())
    }

    /// Waits for the process to end, at most `timeout`; returns its exit code, or `None` if
    /// the timeout passed first.
    pub fn join(&self, timeout: Option<Duration>) -> Result<Option<i64>> {
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
            Some(slot) => wait::wait_until_or_signal(wait::Deadline::after(timeout), || {
                wait::has_exited(slot)
            })?,
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
        self.ensure_mine("test")?;
        collect();
        Ok(matches!(self.0.borrow().state, State::Running { .. }))
    }

    /// Sends `signal` if the process is still running (a no-op once it has ended).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let verb = match signal {
            Signal::SIGKILL => "kill",
            _ => "terminate",
        };
        self.ensure_mine(verb)?;
        match self.0.borrow().state {
            State::Initial => Err(Error::process(format!(
                "cannot {verb} `{}`: it was never started",
                self.0.borrow().name
            ))),
            State::Running { pid, slot } if !wait::has_exited(slot) => {
                // Through the pidfd: never a stranger that reused the pid.
                if crate::trace::enabled() {
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
        f.write_str(">")
    }
}

/// This process's pid, as procscript tracks it (one `getpid` per fork, not per call).
pub fn my_pid() -> Pid {
    ME.with(|me| me.borrow().pid)
}

/// This process's name (`MainProcess`, `Process-1`, ...).
pub fn my_name() -> String {
    ME.with(|me| me.borrow().name.clone())
}

/// Moves the exit statuses the reaper has gathered into their handles: only those of
/// children that ended since the last look, so the cost does not grow with live children.
pub fn collect() {
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
                crate::trace::exited(pid.as_raw(), &reaped);
            }
        }
    });
}

/// The started children that have not ended, as `active_children()` reports them, in the
/// order they were made.
pub fn active_children() -> Vec<Process> {
    collect();
    let mut children: Vec<Process> = ME.with(|me| me.borrow().children.values().cloned().collect());
    children.sort_by_key(|child| child.0.borrow().identity.last().copied());
    children
}

/// The end of a process: daemon children get SIGTERM, then every child is waited for
/// (CPython's exit handler does the same, in this order).
pub fn finish_children() {
    for child in active_children() {
        // Nothing reads or writes a program's pipes any more: let it see end of file.
        crate::command::release_pipes(&child);
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
pub fn signal_children(signal: Signal) {
    for child in active_children() {
        let _ = child.signal(signal);
    }
}

/// In a new child: asks to die with `parent` if wanted, then applies `limits`; a limit that
/// cannot be applied ends the child with code 1 and says why.
fn apply_in_child(name: &str, die_with_parent: bool, parent: Pid, limits: Limits) {
    if die_with_parent {
        die_with(parent);
    }
    if let Err(message) = limits.apply() {
        let text = format!("Process {name}:\nerror: {message}");
        let _ = crate::output::write_line(crate::output::Stream::Stderr, &text);
        fork::exit_now(1);
    }
}

/// Makes the kernel kill this process when its parent dies, even by SIGKILL. A parent that
/// died before the request leaves nothing to watch, so the child ends at once.
fn die_with(parent: Pid) {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no memory is passed.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if nix::unistd::getppid() != parent {
        fork::exit_now(1);
    }
}

/// A seed no other process shares: the parent's sequence must not repeat in its children.
fn fresh_seed(pid: Pid) -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom(&mut bytes) {
        return u64::from_ne_bytes(bytes);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now ^ ((pid.as_raw() as u64) << 32) ^ fastrand::u64(..)
}

fn getrandom(bytes: &mut [u8]) -> bool {
    // SAFETY: the buffer is valid for writes of its length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_NONBLOCK) };
    n == bytes.len() as isize
}

/// A child reads nothing from the terminal its parent reads (CPython does the same), so that
/// `input()` in the parent is not raced by children.
fn redirect_stdin_to_null() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::File::open("/dev/null") {
        // SAFETY: both descriptors are valid; dup2 onto 0 replaces stdin atomically.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
}
