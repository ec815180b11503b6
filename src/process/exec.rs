//! Starting programs: fork, then `execve` in the child, with the child's streams put in
//! place and pipes to it kept by the parent. The runner built on it (`run`, `pipeline`,
//! `communicate`) is [`crate::command`].
//!
//! A program is started with procscript's own fork ([`super::fork`]) followed by `execve`,
//! never with `std::process::Command`: the SIGCHLD reaper must own the exit status of every
//! child, and `Command` would wait for its children itself.
//!
//! Everything the child needs (argv, envp, the candidate paths of the program, the
//! directory, the descriptors of its streams) is prepared before the fork, so that between
//! fork and exec the child only makes async-signal-safe system calls: `dup2`, `chdir`,
//! `sigaction`, `sigprocmask`, `execve`, `write`, `_exit`.
//!
//! A failed exec (a missing program, a directory that does not exist) is reported from the
//! child to the parent through a close-on-exec pipe, as Rust's std and CPython do: a
//! successful exec closes the pipe (the parent reads end of file), a failure writes which
//! step failed and its errno. The parent raises the error at start (`FileNotFoundError`
//! for a missing program), after reaping the child, which ends with code 127.

use std::cell::RefCell;
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::rc::Rc;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::fork::{self, ChildSetup};
use super::wait::{self, Exit, SlotId};
use super::{Job, Options, Process};
use crate::error::{Error, Result};
use crate::sys::Deadline;

/// Exit code of a child whose exec failed (as a shell reports a command it cannot run).
pub(crate) const EXEC_FAILED_CODE: i32 = 127;

/// Where a child's standard stream goes.
#[derive(Debug, Clone)]
pub(crate) enum Stdio {
    /// The parent's own stream.
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe whose other end the parent keeps (read with `read_stdout` and friends).
    Pipe,
    /// A file: read for stdin; created or truncated for stdout and stderr.
    File(String),
    /// Standard error only: wherever standard output goes.
    Stdout,
    /// A descriptor procscript opened (a pipeline's pipe between two commands).
    Fd(Rc<OwnedFd>),
}

impl Stdio {
    /// Reads a stream option: `"inherit"`, `"null"`, `"pipe"`, `"stdout"` (stderr only), or
    /// any other string as a file path.
    pub(crate) fn parse(value: &str, stream: &str) -> Result<Self> {
        Ok(match value {
            "inherit" => Self::Inherit,
            "null" => Self::Null,
            "pipe" => Self::Pipe,
            "stdout" if stream == "stderr" => Self::Stdout,
            "stdout" => return Err(Error::value(format!("only `stderr` can be \"stdout\", not `{stream}` (write \"./stdout\" for a file of that name)"))),
            "" => {
                return Err(Error::value(format!(
                    "`{stream}` must be \"inherit\", \"null\", \"pipe\" or a file path, not \"\""
                )))
            }
            path => Self::File(path.to_string()),
        })
    }
}

/// A program to run, as a script described it.
#[derive(Debug, Clone)]
pub(crate) struct Command {
    /// The program and its arguments; the program is looked up in `PATH` unless it has a `/`.
    pub argv: Vec<String>,
    /// The directory to run it in.
    pub cwd: Option<String>,
    /// Its whole environment; the parent's when `None`.
    pub env: Option<Vec<(String, String)>>,
    /// Standard input.
    pub stdin: Stdio,
    /// Standard output.
    pub stdout: Stdio,
    /// Standard error.
    pub stderr: Stdio,
}

impl Command {
    /// A command with every stream inherited.
    pub(crate) fn new(argv: Vec<String>) -> Self {
        Self {
            argv,
            cwd: None,
            env: None,
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
        }
    }

    /// The program's name, for messages.
    pub(crate) fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }
}

fn c_string(text: impl Into<Vec<u8>>, what: &str) -> Result<CString> {
    CString::new(text).map_err(|_| Error::value(format!("{what} must not contain a NUL character")))
}

/// Null-terminated pointer array over `strings` (which must outlive it).
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The paths to try for `program`, as `execvp` would: itself if it has a `/`, else each
/// directory of `path` (the current one for an empty entry).
fn candidates(program: &str, path: Option<OsString>) -> Result<Vec<CString>> {
    if program.contains('/') {
        return Ok(vec![c_string(program, "the program")?]);
    }
    let path = path.unwrap_or_else(|| "/bin:/usr/bin".into());
    path.as_bytes()
        .split(|b| *b == b':')
        .map(|dir| {
            let mut full = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            c_string(full, "the program")
        })
        .collect()
}

/// Which step of the child's setup failed, as reported through the exec-error pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Redirect = 1,
    Chdir = 2,
    Exec = 3,
}

/// Opens `path` close-on-exec, with a message naming it.
fn open(path: &str, flags: OFlag, what: &str) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o666),
    )
    .map_err(|e| Error::os(format_args!("cannot open `{path}` for {what}"), e))
}

/// Moves a descriptor to 3 or above, so that putting the child's streams in place on 0, 1
/// and 2 cannot overwrite one that is still to be used.
fn above_std(fd: OwnedFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: `fd` is a valid open descriptor; F_DUPFD_CLOEXEC returns a new one we own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(Error::os("duplicate a descriptor", Errno::last()));
    }
    // SAFETY: `new` was just returned by fcntl and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// A close-on-exec pipe, both ends above the standard descriptors.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::os("create a pipe", e))?;
    Ok((above_std(r)?, above_std(w)?))
}

/// One stream's descriptors: what the child gets, and what the parent keeps.
#[derive(Default)]
struct StreamFds {
    /// Put on the child's 0, 1 or 2; `None` leaves the inherited one.
    child: Option<Rc<OwnedFd>>,
    /// The parent's end of a pipe.
    parent: Option<OwnedFd>,
}

fn stream_fds(stdio: &Stdio, target: RawFd, what: &str) -> Result<StreamFds> {
    let input = target == 0;
    let file_flags = if input {
        OFlag::O_RDONLY
    } else {
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC
    };
    Ok(match stdio {
        Stdio::Inherit | Stdio::Stdout => StreamFds::default(),
        Stdio::Null => StreamFds {
            child: Some(Rc::new(above_std(open(
                "/dev/null",
                if input {
                    OFlag::O_RDONLY
                } else {
                    OFlag::O_WRONLY
                },
                what,
            )?)?)),
            parent: None,
        },
        Stdio::File(path) => StreamFds {
            child: Some(Rc::new(above_std(open(path, file_flags, what)?)?)),
            parent: None,
        },
        Stdio::Pipe => {
            let (r, w) = pipe()?;
            let (child, parent) = if input { (r, w) } else { (w, r) };
            StreamFds {
                child: Some(Rc::new(child)),
                parent: Some(parent),
            }
        }
        Stdio::Fd(fd) => StreamFds {
            child: Some(fd.clone()),
            parent: None,
        },
    })
}

/// The program's environment as `KEY=value` C strings, and the `PATH` it is looked up in:
/// `env` when the script gave one (its `PATH`, else this process's), else this process's
/// whole environment.
fn environment(env: Option<&[(String, String)]>) -> Result<(Vec<CString>, Option<OsString>)> {
    let Some(env) = env else {
        let envp = std::env::vars_os()
            .map(|(k, v)| {
                let mut entry = k.into_vec();
                entry.push(b'=');
                entry.extend_from_slice(v.as_bytes());
                c_string(entry, "an environment variable")
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok((envp, std::env::var_os("PATH")));
    };
    let mut path = None;
    let mut envp = Vec::with_capacity(env.len());
    for (key, value) in env {
        if key.is_empty() || key.contains('=') {
            return Err(Error::value(format!(
                "bad environment variable name `{key}`"
            )));
        }
        if key == "PATH" {
            path = Some(OsString::from(value));
        }
        envp.push(c_string(
            format!("{key}={value}"),
            "an environment variable",
        )?);
    }
    Ok((envp, path.or_else(|| std::env::var_os("PATH"))))
}

/// Everything a child needs, made before the fork.
struct Launch {
    program: String,
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Kept alive for `envp_ptrs`.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    candidates: Vec<CString>,
    cwd: Option<CString>,
    /// The descriptors to put on 0, 1, 2 (raw numbers of `child_fds`).
    targets: [RawFd; 3],
    merge_stderr: bool,
    child_fds: Vec<Rc<OwnedFd>>,
    parent_fds: [Option<OwnedFd>; 3],
    report_read: OwnedFd,
    report_write: OwnedFd,
}

impl Launch {
    /// Checks `command` and makes, in the parent, all that the child will need: C strings,
    /// the program's candidate paths, and its streams.
    fn prepare(command: &Command) -> Result<Self> {
        if command.argv.is_empty() {
            return Err(Error::value(
                "a command needs at least a program name: `[\"prog\", \"arg\", ...]`",
            ));
        }
        if command.program().is_empty() {
            return Err(Error::value("the program name must not be empty"));
        }
        let argv = command
            .argv
            .iter()
            .map(|a| c_string(a.as_str(), "a command argument"))
            .collect::<Result<Vec<_>>>()?;
        let (envp, path) = environment(command.env.as_deref())?;
        let candidates = candidates(command.program(), path)?;
        let cwd = command
            .cwd
            .as_deref()
            .map(|c| c_string(c, "`cwd`"))
            .transpose()?;
        if matches!(command.stdout, Stdio::Stdout) {
            return Err(Error::value(
                "`stdout: \"stdout\"` makes no sense; only stderr can go to stdout",
            ));
        }
        let streams = [
            stream_fds(&command.stdin, 0, "stdin")?,
            stream_fds(&command.stdout, 1, "stdout")?,
            stream_fds(&command.stderr, 2, "stderr")?,
        ];
        let (report_read, report_write) = pipe()?;
        let mut targets = [-1; 3];
        let mut child_fds = Vec::new();
        let mut parent_fds: [Option<OwnedFd>; 3] = [None, None, None];
        for (i, stream) in streams.into_iter().enumerate() {
            if let Some(fd) = stream.child {
                targets[i] = fd.as_raw_fd();
                child_fds.push(fd);
            }
            parent_fds[i] = stream.parent;
        }
        let argv_ptrs = pointers(&argv);
        let envp_ptrs = pointers(&envp);
        Ok(Self {
            program: command.program().to_string(),
            argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            candidates,
            cwd,
            targets,
            merge_stderr: matches!(command.stderr, Stdio::Stdout),
            child_fds,
            parent_fds,
            report_read,
            report_write,
        })
    }

    /// The child's side: streams, directory, signals, exec. Only async-signal-safe calls.
    fn exec_in_child(&self) -> ! {
        let report = self.report_write.as_raw_fd();
        for (target, &source) in self.targets.iter().enumerate() {
            // dup2 onto 0..2 clears close-on-exec on the copy; sources are all above 2.
            // SAFETY: both are descriptor numbers; dup2 is async-signal-safe.
            if source >= 0 && unsafe { libc::dup2(source, target as RawFd) } < 0 {
                fail(report, Step::Redirect);
            }
        }
        // SAFETY: as above.
        if self.merge_stderr && unsafe { libc::dup2(1, 2) } < 0 {
            fail(report, Step::Redirect);
        }
        if let Some(cwd) = &self.cwd {
            // SAFETY: `cwd` is a valid C string; chdir is async-signal-safe.
            if unsafe { libc::chdir(cwd.as_ptr()) } < 0 {
                fail(report, Step::Chdir);
            }
        }
        // SAFETY: a zeroed sigaction with SIG_DFL is valid; sigaction, sigemptyset and
        // sigprocmask are async-signal-safe. A program expects SIGPIPE to kill it (Rust
        // ignores it in procscript) and no signal blocked (SIGCHLD may be, here).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGPIPE, &action, std::ptr::null_mut());
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        }
        let mut errno = libc::ENOENT;
        let mut denied = false;
        for path in &self.candidates {
            // SAFETY: `path` and both arrays are valid, null-terminated, and live until exec.
            unsafe {
                libc::execve(
                    path.as_ptr(),
                    self.argv_ptrs.as_ptr(),
                    self.envp_ptrs.as_ptr(),
                )
            };
            match Errno::last_raw() {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR => {}
                other => {
                    errno = other;
                    break;
                }
            }
        }
        if denied && errno == libc::ENOENT {
            errno = libc::EACCES;
        }
        fail_with(report, Step::Exec, errno)
    }

    /// The parent's side after the fork: closes the child's descriptors and learns whether
    /// the exec worked. On `Err`, the child has exited (code 127) and must be reaped.
    fn after_fork(self) -> Result<Pipes> {
        let Self {
            program,
            argv,
            cwd,
            child_fds,
            parent_fds,
            report_read,
            report_write,
            ..
        } = self;
        drop(report_write);
        drop(child_fds);
        drop(argv);
        let mut message = [0u8; 5];
        let mut got = 0;
        while got < message.len() {
            match nix::unistd::read(&report_read, &mut message[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::os(format_args!("start `{program}`"), e)),
            }
        }
        if got == 0 {
            let [stdin, stdout, stderr] = parent_fds;
            if let Some(fd) = &stdin {
                set_nonblocking(fd);
            }
            return Ok(Pipes {
                stdin: RefCell::new(stdin),
                stdout: RefCell::new(Reader::new(stdout)),
                stderr: RefCell::new(Reader::new(stderr)),
            });
        }
        let errno = Errno::from_raw(i32::from_ne_bytes([
            message[1], message[2], message[3], message[4],
        ]));
        let what = match message[0] {
            2 => format!(
                "cannot run `{program}` in `{}`",
                cwd.as_ref()
                    .map_or(String::new(), |c| c.to_string_lossy().into_owned())
            ),
            1 => format!("cannot set up the streams of `{program}`"),
            _ => format!("cannot run `{program}`"),
        };
        Err(Error::os(what, errno))
    }
}

fn fail(report: RawFd, step: Step) -> ! {
    fail_with(report, step, Errno::last_raw())
}

/// Tells the parent which step failed and why, and ends the child.
fn fail_with(report: RawFd, step: Step, errno: i32) -> ! {
    let e = errno.to_ne_bytes();
    let message = [step as u8, e[0], e[1], e[2], e[3]];
    // SAFETY: write and _exit are async-signal-safe; `message` is valid for its length. A
    // pipe write of 5 bytes is atomic.
    unsafe {
        libc::write(report, message.as_ptr().cast(), message.len());
        libc::_exit(EXEC_FAILED_CODE)
    }
}

/// A pipe the parent reads from, with what was read past the last line taken.
pub(crate) struct Reader {
    pub(crate) fd: Option<OwnedFd>,
    /// What was read and not yet taken.
    pub(crate) buffer: Vec<u8>,
    /// Whether the stream was a pipe at all (else there is never anything to read).
    piped: bool,
}

impl Reader {
    /// A reader of `fd` (made non-blocking: reads wait with `ppoll`, see [`wait_ready`]).
    pub(crate) fn new(fd: Option<OwnedFd>) -> Self {
        if let Some(fd) = &fd {
            set_nonblocking(fd);
        }
        Self {
            piped: fd.is_some(),
            fd,
            buffer: Vec::new(),
        }
    }

    /// Whether the stream was started as a pipe.
    pub(crate) fn is_pipe(&self) -> bool {
        self.piped
    }

    /// Reads once into the buffer; false at end of file (the pipe is then closed).
    pub(crate) fn fill(&mut self) -> Result<bool> {
        let Some(fd) = &self.fd else { return Ok(false) };
        let mut chunk = [0u8; 65536];
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    self.fd = None;
                    return Ok(false);
                }
                Ok(n) => {
                    // Output larger than the process may allocate is a catchable
                    // MemoryError (as in Python), not Rust's abort.
                    self.buffer.try_reserve(n).map_err(|_| {
                        Error::memory(format!(
                            "the command's output does not fit in memory ({} bytes read)",
                            self.buffer.len()
                        ))
                    })?;
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(Errno::EAGAIN) => {
                    wait_ready(&mut [pollfd(fd, libc::POLLIN)], None)?;
                }
                Err(Errno::EINTR) => crate::signal::check()?,
                Err(e) => return Err(Error::os("read from a command", e)),
            }
        }
    }

    /// Everything up to end of file.
    pub(crate) fn read_all(&mut self) -> Result<Vec<u8>> {
        while self.fill()? {}
        Ok(std::mem::take(&mut self.buffer))
    }

    /// The next line without its newline; `None` at end of file. A last line without a
    /// newline is returned as it is.
    pub(crate) fn read_line(&mut self) -> Result<Option<Vec<u8>>> {
        let mut searched = 0;
        loop {
            if let Some(at) = self.buffer[searched..].iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=searched + at).collect();
                line.pop();
                return Ok(Some(line));
            }
            searched = self.buffer.len();
            if !self.fill()? {
                return Ok((!self.buffer.is_empty()).then(|| std::mem::take(&mut self.buffer)));
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.fd.is_some()
    }
}

/// The parent's ends of a command's pipes (each `None` unless that stream was `"pipe"`).
pub(crate) struct Pipes {
    /// Writes to the program's standard input.
    pub stdin: RefCell<Option<OwnedFd>>,
    /// Reads its standard output.
    pub stdout: RefCell<Reader>,
    /// Reads its standard error.
    pub stderr: RefCell<Reader>,
}

/// Writes all of `bytes` to `fd` (non-blocking), waiting for room with `ppoll`.
pub(crate) fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => crate::signal::check()?,
            Err(Errno::EAGAIN) => {
                wait_ready(&mut [pollfd(fd, libc::POLLOUT)], None)?;
            }
            Err(e) => return Err(Error::os("write to a command's stdin", e)),
        }
    }
    Ok(())
}

pub(crate) fn pollfd(fd: &OwnedFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }
}

/// Waits until one of `fds` is ready (true) or `deadline` passes (false); see
/// [`wait::wait_ready_or_signal`].
pub(crate) fn wait_ready(fds: &mut [libc::pollfd], deadline: Option<Instant>) -> Result<bool> {
    wait::wait_ready_or_signal(fds, Deadline::at(deadline), "wait for a command")
}

fn set_nonblocking(fd: &OwnedFd) {
    // SAFETY: fcntl on a valid descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// A program started by `run` or `pipeline`: not a script-visible process, but reaped by
/// the same SIGCHLD handler, and counted for `--max-procs` and `--progress` while it runs.
/// Dropping one that is still running kills it and waits for it.
pub(crate) struct Child {
    pid: Pid,
    slot: SlotId,
    exit: Option<Option<Exit>>,
}

impl Child {
    /// Starts `command`; returns the child and the parent's pipe ends.
    /// `label` names it in the trace.
    pub(crate) fn spawn(command: &Command, label: &str) -> Result<(Self, Pipes)> {
        let ticket = super::check_room(command.program())?;
        let launch = Launch::prepare(command)?;
        let (pid, slot) = fork::fork_and_run(ChildSetup::program(command.program()), || {
            launch.exec_in_child()
        })?;
        super::program_started(ticket, pid);
        crate::trace::spawned(pid.as_raw(), "run", label);
        let mut child = Self {
            pid,
            slot,
            exit: None,
        };
        match launch.after_fork() {
            Ok(pipes) => Ok((child, pipes)),
            Err(e) => {
                child.wait_uninterrupted(None);
                Err(e)
            }
        }
    }

    fn take_exit(&mut self) {
        if self.exit.is_none() {
            self.exit = wait::take_exit(self.slot).map(|reaped| {
                super::program_ended(self.pid);
                reaped.trace(self.pid.as_raw());
                reaped.exit
            });
        }
    }

    /// Waits for the child to end, until `deadline`; true once it has. Ctrl-C or SIGTERM
    /// end the wait with `Interrupted`.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let slot = self.slot;
        if self.exit.is_none()
            && wait::wait_until_or_signal(Deadline::at(deadline), || wait::has_exited(slot))?
        {
            self.take_exit();
        }
        Ok(self.exit.is_some())
    }

    /// [`Child::wait`] that a termination signal does not cut short (for cleaning up).
    pub(crate) fn wait_uninterrupted(&mut self, deadline: Option<Instant>) -> bool {
        let slot = self.slot;
        if self.exit.is_none()
            && wait::wait_until(Deadline::at(deadline), || wait::has_exited(slot))
        {
            self.take_exit();
        }
        self.exit.is_some()
    }

    /// Sends `signal` while the program runs (through its pidfd: never a stranger).
    pub(crate) fn signal(&self, signal: Signal) {
        if self.exit.is_none() {
            let _ = wait::send_signal(self.slot, signal);
        }
    }

    /// Sends SIGKILL while the program runs.
    pub(crate) fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    /// Python's `returncode`: the exit code, or minus the signal; -1 if its status was lost.
    pub(crate) fn code(&self) -> i64 {
        self.exit.flatten().map_or(-1, Exit::exitcode)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.kill();
            self.wait_uninterrupted(None);
        }
    }
}

/// A process handle that will run `command` when started; `label` names it in messages
/// and traces.
pub(crate) fn process(command: Command, label: String, options: Options) -> Process {
    Process::new(Some(Job::Command(command)), label, options)
}

/// Starts a command process (called by `start()`): fork, exec, and the pipes attached to
/// the handle. A program that cannot be run is an error here, after its child is reaped.
pub(crate) fn start(process: &Process, command: &Command) -> Result<()> {
    let launch = Launch::prepare(command)?;
    process.fork_program(ChildSetup::program(process.name()), || {
        launch.exec_in_child()
    })?;
    match launch.after_fork() {
        Ok(pipes) => {
            process.set_attachment(Rc::new(pipes));
            Ok(())
        }
        Err(e) => {
            let _ = process.join(None);
            Err(e)
        }
    }
}

/// Closes the parent's ends of a command process's pipes (when its parent ends, so that a
/// program waiting for more input sees end of file instead of keeping the parent waiting).
pub(crate) fn release_pipes(process: &Process) {
    if let Some(pipes) = pipes_of(process) {
        if let Ok(mut stdin) = pipes.stdin.try_borrow_mut() {
            drop(stdin.take());
        }
        for reader in [&pipes.stdout, &pipes.stderr] {
            if let Ok(mut reader) = reader.try_borrow_mut() {
                drop(reader.fd.take());
            }
        }
    }
}

/// The pipes of a command process (none for a process that runs a function).
pub(crate) fn pipes_of(process: &Process) -> Option<Rc<Pipes>> {
    process.attachment::<Pipes>()
}
