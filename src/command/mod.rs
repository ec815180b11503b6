//! Running programs: `Process(#{ command: argv })`, `run(argv)` and `pipeline([...])`.
//!
//! The runner: `run` and `pipeline` start their programs, feed their input, collect their
//! output and exit codes, and enforce their timeouts; `communicate` does the same for a
//! command process. Starting a program (fork, then `execve`, and the pipes to it) is
//! [`crate::process::exec`]'s job, re-exported here.
//!
//! A command with a `host` runs there through the local `ssh` ([`remote`]): it is started
//! here as the `ssh` command that runs it, so everything above applies to that `ssh`.

pub(crate) mod package;
pub(crate) mod remote;

use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::{Error, ErrorKind, Result};
use crate::process::exec::{pipe, wait_ready, Child};
pub(crate) use crate::process::exec::{pipes_of, start, write_all, Command, Pipes, Reader, Stdio};
use crate::process::{Options, Process};
use remote::Remote;

/// A process handle that will run `command` when started, here or (with `remote`) on
/// another host through ssh.
pub(crate) fn process(
    command: Command,
    remote: Option<&Remote>,
    options: Options,
) -> Result<Process> {
    let label = remote::label(&command, remote);
    let command = match remote {
        Some(remote) => remote::localize(&command, remote, None)?,
        None => command,
    };
    Ok(crate::process::exec::process(command, label, options))
}

/// Feeds `input` to `stdin` (then closes it) while reading `stdout` and `stderr` to end of
/// file, all at once with `poll`, so that neither side can fill a pipe and stall the other.
/// Returns `false` if `deadline` passed first.
pub(crate) fn communicate(
    stdin: Option<OwnedFd>,
    mut input: &[u8],
    stdout: &mut Reader,
    stderr: &mut Reader,
    deadline: Option<Instant>,
) -> Result<bool> {
    let mut stdin = stdin;
    if input.is_empty() {
        stdin = None;
    }
    loop {
        let mut fds = Vec::with_capacity(3);
        if let Some(fd) = &stdin {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        for reader in [&*stdout, &*stderr] {
            if let Some(fd) = &reader.fd {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        if fds.is_empty() {
            return Ok(true);
        }
        if !wait_ready(&mut fds, deadline)? {
            return Ok(false);
        }
        for entry in fds.iter().filter(|e| e.revents != 0) {
            if stdin.as_ref().is_some_and(|fd| fd.as_raw_fd() == entry.fd) {
                let fd = stdin.as_ref().expect("checked just above");
                let chunk = &input[..input.len().min(65536)];
                match nix::unistd::write(fd, chunk) {
                    Ok(n) => input = &input[n..],
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    // The program stopped reading: what it did not take is dropped, as
                    // Python's `communicate` does.
                    Err(_) => input = &[],
                }
                if input.is_empty() {
                    stdin = None;
                }
            } else if stdout
                .fd
                .as_ref()
                .is_some_and(|fd| fd.as_raw_fd() == entry.fd)
            {
                stdout.fill()?;
            } else if stderr
                .fd
                .as_ref()
                .is_some_and(|fd| fd.as_raw_fd() == entry.fd)
            {
                stderr.fill()?;
            }
        }
    }
}

/// Options of `run` and `pipeline`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunOptions {
    /// Bytes for the (first) program's standard input; stdin is inherited when `None`.
    pub input: Option<Vec<u8>>,
    /// Longest time to wait before killing everything with SIGKILL.
    pub timeout: Option<Duration>,
    /// Directory for the programs.
    pub cwd: Option<String>,
    /// Whole environment for the programs.
    pub env: Option<Vec<(String, String)>>,
}

/// One program of a pipeline (or the one program of `run`).
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The host it runs on, if not here.
    pub remote: Option<Remote>,
}

impl From<Vec<String>> for Stage {
    fn from(argv: Vec<String>) -> Self {
        Self { argv, remote: None }
    }
}

/// What `run` and `pipeline` give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Exit code of each program (minus the signal number if one ended it).
    pub codes: Vec<i64>,
    /// The (last) program's standard output.
    pub stdout: Vec<u8>,
    /// Standard error of all the programs.
    pub stderr: Vec<u8>,
}

/// Runs `stages` as a pipeline (one program is a pipeline of one) to the end: each one's
/// stdout feeds the next one's stdin, the last one's stdout and everyone's stderr are
/// captured. On timeout every program is killed (SIGKILL) and reaped, and the result is a
/// `TimeoutError`. A remote stage whose ssh failed is a `ConnectionError`.
pub(crate) fn run_pipeline(stages: Vec<Stage>, options: RunOptions) -> Result<Outcome> {
    if stages.is_empty() {
        return Err(Error::value("a pipeline needs at least one command"));
    }
    let deadline = options.timeout.map(|t| Instant::now() + t);
    let names = stage_names(&stages);
    let mut running = Running::start(stages, &options)?;
    let input = options.input.clone().unwrap_or_default();
    let finished = match running.finish(&input, deadline) {
        Ok(finished) => finished,
        Err(e) => {
            running.pass_on_signal();
            return Err(e);
        }
    };
    if !finished {
        running.kill();
        return Err(timed_out(&names, options.timeout.unwrap_or_default()));
    }
    running.outcome(&names)
}

/// How messages name the stages: the program, `host:program` for a remote one.
fn stage_names(stages: &[Stage]) -> Vec<String> {
    stages
        .iter()
        .map(|stage| {
            let program = stage.argv.first().cloned().unwrap_or_default();
            match &stage.remote {
                Some(remote) => format!("{}:{program}", remote.host),
                None => program,
            }
        })
        .collect()
}

/// The `TimeoutError` of a pipeline that did not finish within `timeout`.
fn timed_out(names: &[String], timeout: std::time::Duration) -> Error {
    let what = match names {
        [one] => format!("`{one}`"),
        _ => format!("pipeline `{}`", names.join(" | ")),
    };
    Error::new(
        ErrorKind::TimeoutError,
        format!(
            "{what} did not finish within {} s and was killed",
            timeout.as_secs_f64()
        ),
    )
}

/// A pipeline's programs while they run, with the streams the script talks to.
struct Running {
    children: Vec<Child>,
    /// Each remote stage's ssh log, to tell an ssh failure from the program's own.
    ssh_logs: Vec<Option<remote::SshLog>>,
    /// The first program's stdin, when the script gives it input.
    first_stdin: Option<OwnedFd>,
    stdout: Reader,
    stderr: Reader,
}

impl Running {
    /// Starts every stage, each one's stdout piped into the next one's stdin and every
    /// stderr into one pipe. An error drops the programs started so far, which kills and
    /// reaps them.
    fn start(stages: Vec<Stage>, options: &RunOptions) -> Result<Self> {
        let (err_read, err_write) = pipe()?;
        let err_write = Rc::new(err_write);
        let count = stages.len();
        let mut running = Self {
            children: Vec::with_capacity(count),
            ssh_logs: Vec::with_capacity(count),
            first_stdin: None,
            stdout: Reader::new(None),
            stderr: Reader::new(Some(err_read)),
        };
        let mut previous: Option<Rc<OwnedFd>> = None;
        for (i, stage) in stages.into_iter().enumerate() {
            let mut command = Command::new(stage.argv);
            command.cwd = options.cwd.clone();
            command.env = options.env.clone();
            command.stderr = Stdio::Fd(err_write.clone());
            command.stdin = match previous.take() {
                Some(fd) => Stdio::Fd(fd),
                None if options.input.is_some() => Stdio::Pipe,
                None => Stdio::Inherit,
            };
            let last = i + 1 == count;
            if last {
                command.stdout = Stdio::Pipe;
            } else {
                let (r, w) = pipe()?;
                command.stdout = Stdio::Fd(Rc::new(w));
                previous = Some(Rc::new(r));
            }
            let pipes = running.spawn(command, stage.remote.as_ref())?;
            if i == 0 {
                running.first_stdin = pipes.stdin.into_inner();
            }
            if last {
                running.stdout = pipes.stdout.into_inner();
            }
        }
        Ok(running)
    }

    /// Starts one stage's program, through ssh for a remote one.
    fn spawn(&mut self, command: Command, remote: Option<&Remote>) -> Result<Pipes> {
        let ssh_log = remote.and_then(|_| remote::SshLog::new());
        let label = remote::trace_label(&command, remote);
        let local = match remote {
            Some(remote) => remote::localize(&command, remote, ssh_log.as_ref())?,
            None => command,
        };
        let (child, pipes) = Child::spawn(&local, &label)?;
        self.children.push(child);
        self.ssh_logs.push(ssh_log);
        Ok(pipes)
    }

    /// Feeds the input, gathers the output and waits for every program; `false` if the
    /// deadline passed first.
    fn finish(&mut self, input: &[u8], deadline: Option<Instant>) -> Result<bool> {
        let stdin = self.first_stdin.take();
        if !communicate(stdin, input, &mut self.stdout, &mut self.stderr, deadline)? {
            return Ok(false);
        }
        for child in self.children.iter_mut() {
            if !child.wait(deadline)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// After Ctrl-C or SIGTERM: passes it on and gives the programs the grace period the
    /// script's other children get; dropping them then kills and reaps the rest.
    fn pass_on_signal(&mut self) {
        let Some(signal) = crate::signal::pending() else {
            return;
        };
        for child in &self.children {
            child.signal(signal);
        }
        let grace = Instant::now() + crate::process::GRACE;
        for child in &mut self.children {
            child.wait_uninterrupted(Some(grace));
        }
    }

    /// Kills every program and reaps it.
    fn kill(&mut self) {
        for child in &self.children {
            child.kill();
        }
        for child in &mut self.children {
            child.wait_uninterrupted(None);
        }
    }

    /// The codes and captured streams, or the error of a remote stage whose ssh failed.
    fn outcome(self, names: &[String]) -> Result<Outcome> {
        debug_assert!(!self.stdout.is_open() && !self.stderr.is_open());
        for ((child, log), name) in self.children.iter().zip(&self.ssh_logs).zip(names) {
            if let Some(error) = log.as_ref().and_then(|log| log.failure(child.code(), name)) {
                return Err(error);
            }
        }
        Ok(Outcome {
            codes: self.children.iter().map(Child::code).collect(),
            stdout: self.stdout.buffer,
            stderr: self.stderr.buffer,
        })
    }
}

pub use package::CommandPackage;
