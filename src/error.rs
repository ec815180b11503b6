//! procscript's one error type, and its one conversion into a catchable Rhai value.
//!
//! Natives fail with an [`Error`]; scripts see it in `catch (e)` as a map
//! `#{ kind, message, errno }` where `kind` is Python's exception name, so a handler reads
//! like its Python twin (`if e.kind == "ConnectionResetError" { ... }`).

use std::fmt;

use rhai::{Dynamic, EvalAltResult, Map, Position};

/// Which Python exception an error corresponds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Misuse of a process handle, or a fork that cannot be done.
    ProcessError,
    /// A value of the right type but a wrong value.
    ValueError,
    /// A value of the wrong type, or arguments that do not fit a function.
    TypeError,
    /// An operation that did not finish within its timeout.
    TimeoutError,
    /// An OS error with no more specific kind.
    OSError,
    /// `ENOENT`.
    FileNotFoundError,
    /// `EACCES` / `EPERM`.
    PermissionError,
    /// `ECONNREFUSED`.
    ConnectionRefusedError,
    /// `ECONNRESET`.
    ConnectionResetError,
    /// A connection that could not be made or kept, with no errno (ssh failed).
    ConnectionError,
    /// `EPIPE`.
    BrokenPipeError,
    /// End of input where a value was expected.
    EOFError,
    /// A queue had nothing to get within the timeout.
    Empty,
    /// A queue had no room within the timeout.
    Full,
    /// A non-blocking call that would have to wait (`EAGAIN`, `EINPROGRESS`).
    BlockingIOError,
    /// Ctrl-C or SIGTERM (the signal number) stopped the script; not catchable by scripts,
    /// which end with 128 + the signal, as a shell reports it.
    Interrupted(i32),
    /// An index outside a sequence.
    IndexError,
    /// A field that an object does not have (`get_lock()` of a raw value).
    AttributeError,
    /// Ctrl-C typed at an `input()` prompt on a terminal; catchable, as in Python.
    KeyboardInterrupt,
    /// An operation that is not allowed in the object's state (releasing an unlocked
    /// manager `Lock`).
    RuntimeError,
    /// A missing key of a manager `dict`.
    KeyError,
    /// A broken promise of the caller, where Python uses `assert` (releasing an `RLock`
    /// this process does not hold, waiting on a `Condition` without its lock).
    AssertionError,
    /// A `Barrier` was aborted, reset, or broken by a party's timeout.
    BrokenBarrierError,
    /// Memory for a value could not be had (a command's captured output larger than the
    /// process may allocate).
    MemoryError,
}

impl ErrorKind {
    /// The name scripts see in `e.kind`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ProcessError => "ProcessError",
            Self::ValueError => "ValueError",
            Self::TypeError => "TypeError",
            Self::TimeoutError => "TimeoutError",
            Self::OSError => "OSError",
            Self::FileNotFoundError => "FileNotFoundError",
            Self::PermissionError => "PermissionError",
            Self::ConnectionRefusedError => "ConnectionRefusedError",
            Self::ConnectionResetError => "ConnectionResetError",
            Self::ConnectionError => "ConnectionError",
            Self::BrokenPipeError => "BrokenPipeError",
            Self::EOFError => "EOFError",
            Self::Empty => "Empty",
            Self::Full => "Full",
            Self::BlockingIOError => "BlockingIOError",
            Self::Interrupted(_) => "Interrupted",
            Self::IndexError => "IndexError",
            Self::AttributeError => "AttributeError",
            Self::KeyboardInterrupt => "KeyboardInterrupt",
            Self::RuntimeError => "RuntimeError",
            Self::KeyError => "KeyError",
            Self::AssertionError => "AssertionError",
            Self::BrokenBarrierError => "BrokenBarrierError",
            Self::MemoryError => "MemoryError",
        }
    }

    /// The kind Python gives an errno (`OSError` when there is no subclass for it).
    pub(crate) fn from_errno(errno: nix::errno::Errno) -> Self {
        use nix::errno::Errno;
        match errno {
            Errno::ENOENT => Self::FileNotFoundError,
            Errno::EACCES | Errno::EPERM => Self::PermissionError,
            Errno::ECONNREFUSED => Self::ConnectionRefusedError,
            Errno::ECONNRESET => Self::ConnectionResetError,
            Errno::EPIPE => Self::BrokenPipeError,
            Errno::ETIMEDOUT => Self::TimeoutError,
            // Python's BlockingIOError covers these (EWOULDBLOCK is EAGAIN on Linux).
            Errno::EAGAIN | Errno::EINPROGRESS | Errno::EALREADY => Self::BlockingIOError,
            _ => Self::OSError,
        }
    }
}

/// An error raised by a procscript native.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Python's exception name for it.
    pub kind: ErrorKind,
    /// What was being done, and what went wrong.
    pub message: String,
    /// The OS error number, for OS errors.
    pub errno: Option<i32>,
}

/// Result of a procscript operation.
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Result of a native as Rhai takes it: a value, or an error a script can catch (an
/// [`Error`] converts into one with `?`).
pub(crate) type RhaiResult<T> = std::result::Result<T, Box<EvalAltResult>>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            errno: None,
        }
    }

    /// A [`ErrorKind::ProcessError`].
    pub(crate) fn process(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ProcessError, message)
    }

    /// A [`ErrorKind::ValueError`].
    pub(crate) fn value(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ValueError, message)
    }

    /// A [`ErrorKind::MemoryError`]: an allocation that would otherwise abort the process.
    pub(crate) fn memory(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::MemoryError, message)
    }

    /// An OS error while doing `what`: the one place an errno becomes an [`Error`].
    pub(crate) fn os(what: impl fmt::Display, errno: nix::errno::Errno) -> Self {
        Self {
            kind: ErrorKind::from_errno(errno),
            message: format!("{what}: {} (errno {})", errno.desc(), errno as i32),
            errno: Some(errno as i32),
        }
    }

    /// The same error with an errno.
    pub fn with_errno(mut self, errno: i32) -> Self {
        self.errno = Some(errno);
        self
    }

    /// The map a script's `catch (e)` receives.
    pub fn to_map(&self) -> Map {
        let mut map = Map::new();
        map.insert("kind".into(), self.kind.name().into());
        map.insert("message".into(), self.message.clone().into());
        // An interruption shows the exit code it ends the script with.
        let errno = match self.kind {
            ErrorKind::Interrupted(signal) => Some(128 + signal),
            _ => self.errno,
        };
        if let Some(errno) = errno {
            map.insert("errno".into(), Dynamic::from_int(errno.into()));
        }
        map
    }

    /// Reads an error back from a caught map, when it has procscript's shape.
    pub(crate) fn kind_and_message(value: &Dynamic) -> Option<(String, String)> {
        let map = value.read_lock::<Map>()?;
        let kind = map.get("kind")?.clone().into_string().ok()?;
        let message = map.get("message")?.clone().into_string().ok()?;
        Some((kind, message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for Box<EvalAltResult> {
    /// A catchable runtime error carrying the map, except for an interruption, which ends
    /// the script (uncatchably) with its exit code.
    fn from(error: Error) -> Self {
        if let ErrorKind::Interrupted(signal) = error.kind {
            let code = 128 + signal;
            return EvalAltResult::ErrorTerminated(Dynamic::from_int(code.into()), Position::NONE)
                .into();
        }
        EvalAltResult::ErrorRuntime(error.to_map().into(), Position::NONE).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    #[test]
    fn errno_maps_to_python_kinds() {
        assert_eq!(
            ErrorKind::from_errno(Errno::ECONNREFUSED).name(),
            "ConnectionRefusedError"
        );
        assert_eq!(
            ErrorKind::from_errno(Errno::ENOENT).name(),
            "FileNotFoundError"
        );
        assert_eq!(ErrorKind::from_errno(Errno::EADDRINUSE).name(), "OSError");
        assert_eq!(
            ErrorKind::from_errno(Errno::EAGAIN).name(),
            "BlockingIOError"
        );
    }

    #[test]
    fn os_error_map_has_kind_message_and_errno() {
        let map = Error::os("bind to `127.0.0.1:80`", Errno::EADDRINUSE).to_map();
        assert_eq!(map["kind"].clone().into_string().unwrap(), "OSError");
        assert_eq!(map["errno"].as_int().unwrap(), 98);
        assert!(map["message"]
            .clone()
            .into_string()
            .unwrap()
            .starts_with("bind to `127.0.0.1:80`: "));
    }

    #[test]
    fn caught_map_reads_back() {
        let value: Dynamic = Error::process("cannot start a process twice")
            .to_map()
            .into();
        let (kind, message) = Error::kind_and_message(&value).unwrap();
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("ProcessError", "cannot start a process twice")
        );
    }
}
