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
pub(crate) mod report;
pub(crate) mod timeline;

pub(crate) use model::{ExitStatus, Trace, TracedProcess};

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::output::{self, Stream};

thread_local! {
    /// The events file in this process (and, through `fork`, its children), while tracing.
    static EVENTS: RefCell<Option<Rc<OwnedFd>>> = const { RefCell::new(None) };
}

/// One line of the events file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
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
pub(crate) fn now() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| ts.tv_sec() as f64 + ts.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// Whether this run is being traced.
pub(crate) fn enabled() -> bool {
    EVENTS.with(|events| events.borrow().is_some())
}

/// Appends an event, if tracing (a no-op otherwise).
pub(crate) fn record(event: &Event) {
    let Some(fd) = EVENTS.with(|events| events.borrow().clone()) else {
        return;
    };
    let Ok(mut line) = serde_json::to_string(event) else {
        return;
    };
    line.push('\n');
    let mut bytes = line.as_bytes();
    while !bytes.is_empty() {
        match nix::unistd::write(&*fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Records that this process started `pid` (a no-op when not tracing).
pub(crate) fn spawned(pid: i32, name: &str, target: &str) {
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

/// A traced run in the main process: where the events go, and what to write at the end.
pub(crate) struct Tracing {
    events: Rc<OwnedFd>,
    started: f64,
    main_pid: i32,
    script: String,
}

/// Creates the events file with no name anyone else can open: in a private directory made
/// with `mkdtemp` (mode 0700, an unpredictable name), created with `O_EXCL | O_NOFOLLOW`,
/// then unlinked, and the directory removed, at once. The open descriptor is all that is
/// left, so nothing stays behind however the run ends, even by SIGKILL.
fn private_events_file() -> Result<std::os::fd::OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let template = std::env::temp_dir().join("procscript-trace-XXXXXX");
    let dir = nix::unistd::mkdtemp(&template).map_err(|errno| {
        Error::os(
            format_args!("creating a private directory like `{}`", template.display()),
            errno,
        )
    })?;
    let path = dir.join("events");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    let file = file.map_err(|e| {
        Error::new(
            crate::error::ErrorKind::OSError,
            format!("creating `{}`: {e}", path.display()),
        )
    })?;
    Ok(file.into())
}

impl Tracing {
    /// Starts recording events for a run of `script`. The events file has no name (see
    /// [`private_events_file`]).
    pub(crate) fn start(script: &str) -> Result<Self> {
        let main_pid = nix::unistd::getpid().as_raw();
        // The standard library opens files close-on-exec, so programs a script runs do not
        // inherit the events file; forked children do, which is the point.
        let events = Rc::new(private_events_file()?);
        EVENTS.with(|slot| *slot.borrow_mut() = Some(events.clone()));
        let started = now();
        record(&Event::Spawn {
            t: started,
            pid: main_pid,
            ppid: nix::unistd::getppid().as_raw(),
            name: "MainProcess".into(),
            target: script.to_string(),
        });
        Ok(Self {
            events,
            started,
            main_pid,
            script: script.to_string(),
        })
    }

    /// Records the main process's own end and folds the events into a trace.
    pub(crate) fn finish(self, exit_code: i32) -> Result<Trace> {
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
        EVENTS.with(|slot| slot.borrow_mut().take());
        let mut text = Vec::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            match nix::sys::uio::pread(&*self.events, &mut buf, text.len() as libc::off_t) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(Error::os("reading the trace's events", errno)),
            }
        }
        let events: Vec<Event> = String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Ok(Trace::from_events(&self.script, self.started, &events))
    }
}

/// Refuses an output path that names an input of the run (`run --trace x.rhai x.rhai` would
/// replace the script with YAML), checked by device and inode, before anything runs.
pub(crate) fn refuse_overwrite(output: &Path, input: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // The output's own entry (a symlink there is replaced, not followed), the input's file.
    if let (Ok(out), Ok(inp)) = (std::fs::symlink_metadata(output), std::fs::metadata(input)) {
        if out.dev() == inp.dev() && out.ino() == inp.ino() {
            return Err(Error::value(format!(
                "refusing to write the {what} to `{}`: it is `{}`, which this run reads",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Writes an output file (trace, timeline) safely: the bytes go to a new file created next
/// to `path` with `O_EXCL | O_NOFOLLOW` under an unpredictable name, which is then renamed
/// onto `path`. A symlink at `path` is replaced, never followed, so `--trace` cannot be
/// turned into a write to whatever a link points at, and a reader never sees half a file.
pub(crate) fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| {
        Error::new(
            crate::error::ErrorKind::from_errno(nix::errno::Errno::from_raw(
                e.raw_os_error().unwrap_or(0),
            )),
            format!("writing `{}`: {e}", path.display()),
        )
    };
    // A device or a FIFO is written into, as the shell's `>` does: renaming over it would
    // replace it (as root, `--trace /dev/null` replaced the machine's /dev/null).
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_char_device() || kind.is_fifo() {
            // O_NONBLOCK: a FIFO nobody reads is an error (ENXIO), not a hang.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
                .map_err(fail)?;
            // Blocking again once open: a reader slower than the writer is waited for.
            nix::fcntl::fcntl(
                &file,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
            )
            .map_err(|e| fail(e.into()))?;
            return file.write_all(bytes).map_err(fail);
        }
        if kind.is_dir() {
            return Err(Error::value(format!(
                "`{}` is a directory, not a file to write",
                path.display()
            )));
        }
        if kind.is_block_device() || kind.is_socket() {
            return Err(Error::value(format!(
                "refusing to write to `{}`: it is not a regular file",
                path.display()
            )));
        }
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::value(format!("`{}` is not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut attempt = 0;
    let (temp, mut file) = loop {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{:016x}.tmp", fastrand::u64(..)));
        let temp = dir.join(temp_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
        {
            Ok(file) => break (temp, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(e) => return Err(fail(e)),
        }
    };
    let written = file.write_all(bytes).and_then(|()| file.flush());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(e));
    }
    Ok(())
}

/// Seconds in a `timeval`.
pub(crate) fn timeval_secs(tv: nix::sys::time::TimeVal) -> f64 {
    tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6
}

/// Writes a trace as YAML.
pub(crate) fn write_yaml(trace: &Trace, path: &Path) -> Result<()> {
    let text = serde_yaml::to_string(trace)
        .map_err(|e| Error::value(format!("serialising the trace: {e}")))?;
    write_output(path, text.as_bytes())
}

/// Reads a trace written by [`write_yaml`].
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
pub(crate) fn read_yaml(path: &Path) -> Result<Trace> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            crate::error::ErrorKind::OSError,
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
pub(crate) fn announce(what: &str, path: &Path) {
    let _ = output::write_line(
        Stream::Stderr,
        &format!("procscript: {what} written to {}", path.display()),
    );
}
