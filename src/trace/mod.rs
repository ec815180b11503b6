//! Tracing a run: which processes ran, in what tree, for how long, at what cost, and how
//! each ended.
//!
//! While a run is traced, every procscript process appends one JSON line per event
//! (spawn, exit, join, terminate, kill) to one shared events file, opened `O_APPEND` by
//! the main process and inherited by every child and grandchild through `fork`. Each event
//! is a single `write(2)`, so events from many processes never mix. At the end the main
//! process folds the events into a [`Trace`] and writes it as YAML (`--trace run.yaml`)
//! and/or as an SVG timeline (`--timeline run.svg`).
//!
//! Exit events are written by the parent when it collects the child's status, with the
//! CPU times and peak memory `wait4` reported, so a child that dies by a signal is traced
//! as completely as one that returns.

mod model;
pub mod report;
pub mod timeline;

pub use model::{ExitStatus, Trace, TraceEvent, TracedProcess};

use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::output::{self, Stream};

/// The events file's descriptor in this process, or -1 when not tracing.
static EVENTS_FD: AtomicI32 = AtomicI32::new(-1);

/// One line of the events file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A process was started.
    Spawn {
        /// When (seconds on the monotonic clock).
        t: f64,
        /// The new process.
        pid: i32,
        /// Its parent.
        ppid: i32,
        /// Its name.
        name: String,
        /// What it runs: a function name, `run`, `spawn`, a command, or the script.
        target: String,
    },
    /// A process ended; written by its parent when it collected the status.
    Exit {
        /// When the process ended (seconds on the monotonic clock).
        t: f64,
        /// The process.
        pid: i32,
        /// Its exit code, if it exited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        /// The signal that ended it, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        /// User CPU seconds.
        user_cpu: f64,
        /// System CPU seconds.
        sys_cpu: f64,
        /// Peak resident memory in KiB.
        max_rss_kib: i64,
    },
    /// A parent's `join` saw the process end.
    Join {
        /// When.
        t: f64,
        /// The joined process.
        pid: i32,
        /// The joining process.
        by: i32,
    },
    /// SIGTERM was sent.
    Terminate {
        /// When.
        t: f64,
        /// The target.
        pid: i32,
        /// The sender.
        by: i32,
    },
    /// SIGKILL was sent.
    Kill {
        /// When.
        t: f64,
        /// The target.
        pid: i32,
        /// The sender.
        by: i32,
    },
}

/// Seconds on the monotonic clock, which all processes of a machine share.
pub fn now() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| ts.tv_sec() as f64 + ts.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// Whether this run is being traced.
pub fn enabled() -> bool {
    EVENTS_FD.load(Ordering::Relaxed) >= 0
}

/// Appends an event, if tracing (a no-op otherwise).
pub fn record(event: &Event) {
    let fd = EVENTS_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let Ok(mut line) = serde_json::to_string(event) else {
        return;
    };
    line.push('\n');
    // SAFETY: `fd` is the events file, opened by `start` and never closed while tracing.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut bytes = line.as_bytes();
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Records that this process started `pid` (a no-op when not tracing).
pub fn spawned(pid: i32, name: &str, target: &str) {
    if enabled() {
        record(&Event::Spawn {
            t: now(),
            pid,
            ppid: nix::unistd::getpid().as_raw(),
            name: name.to_string(),
            target: target.to_string(),
        });
    }
}

/// Records how a child of this process ended, as the reaper saw it (a no-op when not
/// tracing).
pub fn exited(pid: i32, reaped: &crate::process::wait::Reaped) {
    use crate::process::wait::Exit;
    if enabled() {
        record(&Event::Exit {
            t: reaped.ended,
            pid,
            code: match reaped.exit {
                Some(Exit::Code(code)) => Some(code),
                _ => None,
            },
            signal: match reaped.exit {
                Some(Exit::Signal(sig)) => Some(sig),
                _ => None,
            },
            user_cpu: reaped.user_cpu,
            sys_cpu: reaped.sys_cpu,
            max_rss_kib: reaped.max_rss_kib,
        });
    }
}

/// A traced run in the main process: where the events go, and what to write at the end.
pub struct Tracing {
    events_path: PathBuf,
    started: f64,
    main_pid: i32,
    script: String,
}

impl Tracing {
    /// Starts recording events for a run of `script`, next to `near` (the output path).
    pub fn start(near: &Path, script: &str) -> Result<Self> {
        let main_pid = nix::unistd::getpid().as_raw();
        let mut name = near
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "trace".into());
        name.push(format!(".{main_pid}.events"));
        let events_path = near.with_file_name(name);
        let _ = std::fs::remove_file(&events_path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&events_path)
            .map_err(|e| {
                Error::new(
                    crate::ErrorKind::OSError,
                    format!("creating `{}`: {e}", events_path.display()),
                )
            })?;
        // The standard library opens files close-on-exec, so programs a script runs do not
        // inherit the events file; forked children do, which is the point.
        EVENTS_FD.store(file.into_raw_fd(), Ordering::Relaxed);
        let started = now();
        record(&Event::Spawn {
            t: started,
            pid: main_pid,
            ppid: nix::unistd::getppid().as_raw(),
            name: "MainProcess".into(),
            target: script.to_string(),
        });
        Ok(Self {
            events_path,
            started,
            main_pid,
            script: script.to_string(),
        })
    }

    /// Records the main process's own end and folds the events into a trace.
    pub fn finish(self, exit_code: i32) -> Result<Trace> {
        let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok();
        record(&Event::Exit {
            t: now(),
            pid: self.main_pid,
            code: Some(exit_code),
            signal: None,
            user_cpu: usage.map_or(0.0, |u| timeval_secs(u.user_time())),
            sys_cpu: usage.map_or(0.0, |u| timeval_secs(u.system_time())),
            max_rss_kib: usage.map_or(0, |u| u.max_rss()),
        });
        let fd = EVENTS_FD.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            let _ = nix::unistd::close(fd);
        }
        let text = std::fs::read_to_string(&self.events_path).unwrap_or_default();
        let _ = std::fs::remove_file(&self.events_path);
        let events: Vec<Event> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Ok(Trace::from_events(&self.script, self.started, &events))
    }
}

/// Seconds in a `timeval`.
pub fn timeval_secs(tv: nix::sys::time::TimeVal) -> f64 {
    tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6
}

/// Writes a trace as YAML.
pub fn write_yaml(trace: &Trace, path: &Path) -> Result<()> {
    let text = serde_yaml::to_string(trace)
        .map_err(|e| Error::value(format!("serialising the trace: {e}")))?;
    std::fs::write(path, text).map_err(|e| {
        Error::new(
            crate::ErrorKind::OSError,
            format!("writing `{}`: {e}", path.display()),
        )
    })
}

/// Reads a trace written by [`write_yaml`].
pub fn read_yaml(path: &Path) -> Result<Trace> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            crate::ErrorKind::OSError,
            format!("reading `{}`: {e}", path.display()),
        )
    })?;
    let trace: Trace = serde_yaml::from_str(&text).map_err(|e| {
        Error::value(format!(
            "`{}` is not a procscript trace: {e}",
            path.display()
        ))
    })?;
    trace.validate().map_err(|e| {
        Error::value(format!(
            "`{}` is not a valid procscript trace: {e}",
            path.display()
        ))
    })?;
    Ok(trace)
}

/// Tells the user where a file went (to stderr, so stdout stays the script's).
pub fn announce(what: &str, path: &Path) {
    let _ = output::write_line(
        Stream::Stderr,
        &format!("procscript: {what} written to {}", path.display()),
    );
}
