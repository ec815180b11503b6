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
    let names: Vec<String> = stages
        .iter()
        .map(|stage| {
            let program = stage.argv.first().cloned().unwrap_or_default();
            match &stage.remote {
                Some(remote) => format!("{}:{program}", remote.host),
                None => program,
            }
        })
        .collect();
    let (err_read, err_write) = pipe()?;
    let err_write = Rc::new(err_write);
    let count = stages.len();
    let mut children = Vec::with_capacity(count);
    let mut ssh_logs = Vec::with_capacity(count);
    let mut first_stdin = None;
    let mut last_stdout = None;
    let mut previous: Option<Rc<OwnedFd>> = None;
    for (i, stage) in stages.into_iter().enumerate() {
        let remote = stage.remote;
        let mut command = Command::new(stage.argv);
        command.cwd = options.cwd.clone();
        command.env = options.env.clone();
        command.stderr = Stdio::Fd(err_write.clone());
        command.stdin = match previous.take() {
            Some(fd) => Stdio::Fd(fd),
            None if options.input.is_some() => Stdio::Pipe,
            None => Stdio::Inherit,
        };
        let next_read = if i + 1 < count {
            let (r, w) = pipe()?;
            command.stdout = Stdio::Fd(Rc::new(w));
            Some(Rc::new(r))
        } else {
            command.stdout = Stdio::Pipe;
            None
        };
        // An error here drops the children started so far, which kills and reaps them.
        let ssh_log = remote.as_ref().and_then(|_| remote::SshLog::new());
        let label = remote::trace_label(&command, remote.as_ref());
        let local = match &remote {
            Some(remote) => remote::localize(&command, remote, ssh_log.as_ref())?,
            None => command,
        };
        let (child, pipes) = Child::spawn(&local, &label)?;
        drop(local);
        children.push(child);
        ssh_logs.push(ssh_log);
        if i == 0 {
            first_stdin = pipes.stdin.into_inner();
        }
        if next_read.is_none() {
            last_stdout = Some(pipes.stdout.into_inner());
        }
        previous = next_read;
    }
    drop(err_write);
    let mut stdout = last_stdout.unwrap_or_else(|| Reader::new(None));
    let mut stderr = Reader::new(Some(err_read));
    let input = options.input.unwrap_or_default();
    let waited = (|| {
        if !communicate(first_stdin, &input, &mut stdout, &mut stderr, deadline)? {
            return Ok(false);
        }
        for child in children.iter_mut() {
            if !child.wait(deadline)? {
                return Ok(false);
            }
        }
        Ok(true)
    })();
    let finished = match waited {
        Ok(finished) => finished,
        Err(e) => {
            // Ctrl-C or SIGTERM: pass it on and give the programs the grace period the
            // script's other children get; dropping them then kills and reaps the rest.
            if let Some(signal) = crate::signal::pending() {
                for child in &children {
                    child.signal(signal);
                }
                let grace = Instant::now() + crate::process::GRACE;
                for child in &mut children {
                    child.wait_uninterrupted(Some(grace));
                }
            }
            return Err(e);
        }
    };
    if !finished {
        for child in &children {
            child.kill();
        }
        for child in &mut children {
            child.wait_uninterrupted(None);
        }
        let what = if count == 1 {
            format!("`{}`", names[0])
        } else {
            format!("pipeline `{}`", names.join(" | "))
        };
        return Err(Error::new(
            ErrorKind::TimeoutError,
            format!(
                "{what} did not finish within {} s and was killed",
                options.timeout.unwrap_or_default().as_secs_f64()
            ),
        ));
    }
    debug_assert!(!stdout.is_open() && !stderr.is_open());
    for ((child, log), name) in children.iter().zip(&ssh_logs).zip(&names) {
        if let Some(error) = log.as_ref().and_then(|log| log.failure(child.code(), name)) {
            return Err(error);
        }
    }
    Ok(Outcome {
        codes: children.iter().map(Child::code).collect(),
        stdout: stdout.buffer,
        stderr: stderr.buffer,
    })
}

pub use package::CommandPackage;
