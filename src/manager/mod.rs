//! `Manager()`: shared containers held by a manager process, as Python's
//! `multiprocessing.managers.SyncManager` holds them: `dict`, `list`, `Value`, `Lock`,
//! `Queue` and `Namespace` proxies that every process can read and change.
//!
//! The design, single-threaded everywhere:
//!
//! - `Manager()` binds a listening Unix socket with an abstract name (no file to clean up;
//!   the kernel frees the name when the manager's socket closes) and forks the manager
//!   process (`SyncManager-N`), a daemon that dies with its creator, even if the creator is
//!   killed with SIGKILL. It serves every connection from one poll loop ([`server`]), in a
//!   process group of its own, out of reach of a terminal's Ctrl-C.
//! - Each process talks to the manager over its **own** connection, made the first time it
//!   uses a proxy: a connection inherited through `fork` is closed in the child at once
//!   (the child's setup closes it, see `process::fork::close_in_children`), so the manager
//!   sees a connection close exactly when the process that made it ends, and can release
//!   the locks it held.
//! - A connection is accepted only from a process of the same user (`SO_PEERCRED`) that
//!   presents the manager's random key, which only the creator and its descendants know.
//! - Every call is one request and one answer; operations run one at a time in the manager,
//!   so each is atomic. Blocking calls wait in the manager, not in a client's lock: a
//!   `Lock.acquire` or `Queue.get` is answered when it can be, without holding up others.
//! - The manager ends at `shutdown()`, when the creator drops its last handle on it (as a
//!   Python manager ends when it is garbage-collected), or with its creator: it is a daemon
//!   child, so a script's end terminates it like any daemon. A proxy used afterwards fails
//!   with a `ConnectionRefusedError`.
//!
//! Objects live as long as the manager: forked copies of a proxy cannot be counted, so
//! unlike Python's, the manager does not free an object when its proxies go.

pub(crate) mod objects;
pub(crate) mod package;
pub(crate) mod server;

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::unistd::Pid;
use rhai::{Array, Dynamic, Map, INT};

use crate::error::{Error, ErrorKind, Result};
use crate::ipc::pipe;
use crate::process::{my_pid, Options, Process};

pub use package::ManagerPackage;

/// Length of a manager's authentication key, in bytes.
const AUTHKEY_LEN: usize = 32;

/// What reads and writes on a manager connection are called in messages.
const WHAT: &str = "the Manager's connection";

/// The kinds an answer from the manager may carry.
const ANSWER_KINDS: [ErrorKind; 9] = [
    ErrorKind::KeyError,
    ErrorKind::IndexError,
    ErrorKind::AttributeError,
    ErrorKind::RuntimeError,
    ErrorKind::ValueError,
    ErrorKind::TypeError,
    ErrorKind::Empty,
    ErrorKind::Full,
    ErrorKind::OSError,
];

/// A handle on a manager process; clones share it.
#[derive(Clone)]
pub(crate) struct SyncManager(Rc<Shared>);

struct Shared {
    /// The listening socket's abstract name (without the leading NUL).
    name: String,
    authkey: Vec<u8>,
    /// The process that started the manager: the only one that shuts it down on drop.
    creator: Pid,
    process: Process,
    pid: Pid,
    conn: RefCell<Option<Conn>>,
    /// `shutdown()` was called in this process (or it saw the manager end).
    shut_down: Cell<bool>,
}

// ---------------------------------------------------------------- connections and fork

/// One process's connection to a manager.
struct Conn {
    fd: Option<OwnedFd>,
    /// The process that opened it: in any other, it is an inherited copy.
    pid: Pid,
    /// Its place among the descriptors every child closes
    /// ([`crate::process::fork::close_in_children`]): if set, a fork closed the child's copy.
    slot: Option<usize>,
}

impl Conn {
    fn open(name: &str, authkey: &[u8]) -> Result<Self> {
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| Error::os("socket for a Manager connection", e))?;
        let addr = UnixAddr::new_abstract(name.as_bytes())
            .map_err(|e| Error::os("the Manager's address", e))?;
        loop {
            match socket::connect(fd.as_raw_fd(), &addr) {
                Ok(()) | Err(Errno::EISCONN) => break,
                Err(Errno::EINTR) => crate::signal::check()?,
                Err(e) => return Err(not_running(Some(e))),
            }
        }
        let slot = crate::process::fork::close_in_children(fd.as_raw_fd());
        let conn = Self {
            fd: Some(fd),
            pid: my_pid(),
            slot,
        };
        let hello = pipe::frame(&Dynamic::from_blob(authkey.to_vec()), str::to_string)?;
        pipe::write_all(conn.fd(), &hello, true, WHAT).map_err(|e| lost(&e))?;
        Ok(conn)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("an open connection").as_fd()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else {
            return;
        };
        if self.pid == my_pid() {
            if let Some(slot) = self.slot {
                crate::process::fork::stop_closing_in_children(slot);
            }
            drop(fd);
        } else if self.slot.is_some() {
            // Closed in this process already, at the fork: the number may be reused now.
            let _ = fd.into_raw_fd();
        } else {
            // Inherited and still open (there was no slot to have it closed at the fork).
            drop(fd);
        }
    }
}

// ---------------------------------------------------------------- errors

/// The error for a manager that is not there: shut down, ended, or killed.
fn not_running(errno: Option<Errno>) -> Error {
    let mut message =
        "the Manager is not running (it was shut down, or its process ended)".to_string();
    if let Some(e) = errno {
        message.push_str(&format!(": {}", e.desc()));
    }
    Error::new(ErrorKind::ConnectionRefusedError, message).with_errno(Errno::ECONNREFUSED as i32)
}

/// The connection broke in the middle of a call.
fn lost(cause: &Error) -> Error {
    if matches!(cause.kind, ErrorKind::Interrupted(_)) {
        return cause.clone();
    }
    Error::new(
        ErrorKind::ConnectionRefusedError,
        format!(
            "the Manager is not running (it was shut down, or its process ended): {}",
            cause.message
        ),
    )
    .with_errno(Errno::ECONNREFUSED as i32)
}

/// The one place a process waits for the manager: until its connection is readable (an
/// answer, or the manager gone), reaping children meanwhile; Ctrl-C and SIGTERM end the
/// wait. There is no deadline here: a timed call's deadline is kept by the manager, which
/// answers when it passes.
fn wait_for_answer(fd: BorrowedFd<'_>) -> Result<()> {
    let mut fds = [libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    crate::process::wait::wait_ready_or_signal(
        &mut fds,
        crate::sys::Deadline::NEVER,
        "waiting for the Manager",
    )?;
    Ok(())
}

// ---------------------------------------------------------------- the manager handle

impl SyncManager {
    /// Starts a manager process and returns a handle on it.
    pub(crate) fn start() -> Result<Self> {
        let mut random = [0u8; AUTHKEY_LEN + 8];
        crate::sys::fd::fill_random(&mut random);
        let authkey = random[..AUTHKEY_LEN].to_vec();
        let tag: String = random[AUTHKEY_LEN..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = format!("procscript-manager-{}-{tag}", my_pid());
        let listener = listen(&name)?;
        let process = Process::new(
            None,
            "manager",
            Options {
                daemon: Some(true),
                die_with_parent: Some(true),
                ..Options::default()
            },
        );
        process.set_name(process.name().replacen("Process", "SyncManager", 1));
        process.take_job_for_start()?;
        let key = authkey.clone();
        // The listener moves into the child's body; the parent's copy closes when that
        // closure is dropped after the fork, so that the manager holds the only one.
        let pid = process.fork(move || server::serve(listener, key))?;
        // The manager moves to a process group of its own (see `server::serve`); do it from
        // here too, as shells do for their jobs, so that it is done when `Manager()` returns.
        let _ = nix::unistd::setpgid(pid, pid);
        Ok(Self(Rc::new(Shared {
            name,
            authkey,
            creator: my_pid(),
            process,
            pid,
            conn: RefCell::new(None),
            shut_down: Cell::new(false),
        })))
    }

    /// The manager process's pid.
    pub(crate) fn pid(&self) -> Pid {
        self.0.pid
    }

    /// Whether this process has seen the manager shut down.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.0.shut_down.get()
    }

    /// Makes a shared object of `kind` (`dict`, `list`, `Value`, `Lock`, `Queue`,
    /// `Namespace`) from `args`; returns its id.
    pub(crate) fn create(
        &self,
        kind: &str,
        mut args: Array,
        type_name: &dyn Fn(&str) -> String,
    ) -> Result<u64> {
        args.insert(0, Dynamic::from(kind.to_string()));
        let id = self.call(server::MANAGER, "create", args, type_name)?;
        id.as_int()
            .ok()
            .and_then(|id| u64::try_from(id).ok())
            .ok_or_else(|| corrupt("an object id"))
    }

    /// Calls `method` of object `id` in the manager and returns its answer.
    pub(crate) fn call(
        &self,
        id: u64,
        method: &str,
        args: Array,
        type_name: &dyn Fn(&str) -> String,
    ) -> Result<Dynamic> {
        let request = Dynamic::from_array(vec![
            Dynamic::from_int(id as INT),
            Dynamic::from(method.to_string()),
            Dynamic::from_array(args),
        ]);
        // Encode first: a value that cannot travel fails before anything is sent.
        let bytes = pipe::frame(&request, type_name)?;
        if self.0.shut_down.get() {
            return Err(Error::new(
                ErrorKind::ConnectionRefusedError,
                "the Manager was shut down (`shutdown()`)",
            )
            .with_errno(Errno::ECONNREFUSED as i32));
        }
        let answer = self.0.exchange(&bytes)?;
        read_answer(answer)
    }

    /// Shuts the manager down: it answers, ends, and (in the process that started it) is
    /// joined. Every proxy fails afterwards. A second call does nothing.
    pub(crate) fn shutdown(&self) -> Result<()> {
        self.0.stop();
        crate::signal::check()
    }
}

impl std::fmt::Display for SyncManager {
    /// `<SyncManager pid=4242 running>`, or `shut down`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.is_shut_down() {
            "shut down"
        } else {
            "running"
        };
        write!(f, "<SyncManager pid={} {state}>", self.0.pid)
    }
}

impl Shared {
    /// Sends one request and reads its answer on this process's connection (made now if
    /// there is none yet). Any failure in between drops the connection, so a late answer
    /// can never be taken for the next call's.
    fn exchange(&self, request: &[u8]) -> Result<Dynamic> {
        let mut slot = self.conn.borrow_mut();
        if slot.as_ref().is_some_and(|c| c.pid != my_pid()) {
            slot.take();
        }
        if slot.is_none() {
            *slot = Some(Conn::open(&self.name, &self.authkey)?);
        }
        let conn = slot.as_ref().expect("a connection");
        let result = pipe::write_all(conn.fd(), request, true, WHAT)
            .and_then(|()| wait_for_answer(conn.fd()))
            .and_then(|()| pipe::read_message(conn.fd(), WHAT, || {}, &mut |_| Ok(true)));
        match result {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => {
                slot.take();
                Err(corrupt("an answer"))
            }
            Err(e) => {
                slot.take();
                crate::signal::check()?;
                Err(lost(&e))
            }
        }
    }

    /// Shuts the manager down (once): asks it to end, then, in the creator, joins it, with
    /// SIGTERM and then SIGKILL if it does not end within a second each.
    fn stop(&self) {
        if self.shut_down.replace(true) {
            return;
        }
        if let Ok(request) = pipe::frame(
            &Dynamic::from_array(vec![
                Dynamic::from_int(server::MANAGER as INT),
                Dynamic::from("shutdown".to_string()),
                Dynamic::from_array(Array::new()),
            ]),
            str::to_string,
        ) {
            let _ = self.exchange(&request);
        }
        self.conn.borrow_mut().take();
        if self.creator != my_pid() {
            return;
        }
        let second = Some(Duration::from_secs(1));
        for signal in [None, Some(Signal::SIGTERM), Some(Signal::SIGKILL)] {
            if let Some(signal) = signal {
                let _ = self.process.signal(signal);
            }
            let wait = if signal == Some(Signal::SIGKILL) {
                None
            } else {
                second
            };
            match self.process.join(wait) {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => {}
            }
        }
    }
}

impl Drop for Shared {
    /// The creator's last handle went: the manager goes too (Python's manager is shut down
    /// when it is garbage-collected). Copies in other processes leave it running.
    fn drop(&mut self) {
        if self.creator == my_pid() {
            self.stop();
        } else {
            self.conn.get_mut().take();
        }
    }
}

fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::OSError,
        format!("corrupt message from the Manager: {what} was expected"),
    )
}

/// The value of an answer `[true, value]`, or the error of `[false, #{ kind, message }]`.
fn read_answer(answer: Dynamic) -> Result<Dynamic> {
    let mut parts = answer
        .try_cast::<Array>()
        .ok_or_else(|| corrupt("an answer"))?;
    if parts.len() != 2 {
        return Err(corrupt("an answer"));
    }
    let value = std::mem::take(&mut parts[1]);
    if parts[0].as_bool() == Ok(true) {
        return Ok(value);
    }
    let map = value.try_cast::<Map>().ok_or_else(|| corrupt("an error"))?;
    let text = |key: &str| {
        map.get(key)
            .and_then(|v| v.clone().into_string().ok())
            .unwrap_or_default()
    };
    let name = text("kind");
    let kind = ANSWER_KINDS
        .into_iter()
        .find(|k| k.name() == name)
        .unwrap_or(ErrorKind::OSError);
    Err(Error::new(kind, text("message")))
}

/// Binds and listens on the abstract Unix socket `name`.
fn listen(name: &str) -> Result<OwnedFd> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| Error::os("socket for a Manager", e))?;
    let addr = UnixAddr::new_abstract(name.as_bytes())
        .map_err(|e| Error::os("the Manager's address", e))?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| Error::os("bind for a Manager", e))?;
    let backlog = Backlog::new(1024).unwrap_or(Backlog::MAXCONN);
    socket::listen(&fd, backlog).map_err(|e| Error::os("listen for a Manager", e))?;
    Ok(fd)
}

// ---------------------------------------------------------------- proxies

/// A handle on one object in a manager.
#[derive(Clone)]
pub(crate) struct Proxy {
    manager: SyncManager,
    id: u64,
}

impl Proxy {
    /// Makes an object of `kind` in `manager`.
    pub(crate) fn create(
        manager: &SyncManager,
        kind: &str,
        args: Array,
        type_name: &dyn Fn(&str) -> String,
    ) -> Result<Self> {
        let id = manager.create(kind, args, type_name)?;
        Ok(Self {
            manager: manager.clone(),
            id,
        })
    }

    /// Calls `method` (Python's name for it) with `args` in the manager.
    pub(crate) fn call(
        &self,
        method: &str,
        args: Array,
        type_name: &dyn Fn(&str) -> String,
    ) -> Result<Dynamic> {
        self.manager.call(self.id, method, args, type_name)
    }

    /// Calls a method whose arguments are plain values of procscript's own making.
    pub(crate) fn call_plain(&self, method: &str, args: Array) -> Result<Dynamic> {
        self.call(method, args, &str::to_string)
    }

    /// [`Proxy::call`] for a method whose answer is `()`.
    pub(crate) fn call_unit(
        &self,
        method: &str,
        args: Array,
        type_name: &dyn Fn(&str) -> String,
    ) -> Result<()> {
        self.call(method, args, type_name).map(drop)
    }

    /// [`Proxy::call_plain`] for a method whose answer is `()`.
    pub(crate) fn call_plain_unit(&self, method: &str, args: Array) -> Result<()> {
        self.call_plain(method, args).map(drop)
    }
}

macro_rules! proxy_types {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone)]
        pub(crate) struct $name(pub(crate) Proxy);
    )*};
}

proxy_types! {
    /// A manager's `dict`.
    DictProxy,
    /// A manager's `list`.
    ListProxy,
    /// A manager's `Value`.
    ValueProxy,
    /// A manager's `Lock`.
    LockProxy,
    /// A manager's `Queue`.
    QueueProxy,
    /// A manager's `Namespace`.
    NamespaceProxy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_back_as_values_or_python_errors() {
        let ok = Dynamic::from_array(vec![Dynamic::TRUE, Dynamic::from_int(5)]);
        assert_eq!(read_answer(ok).unwrap().as_int().unwrap(), 5);
        let error = Error::new(ErrorKind::KeyError, "'x'").to_map();
        let failed = Dynamic::from_array(vec![Dynamic::FALSE, Dynamic::from_map(error)]);
        let e = read_answer(failed).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::KeyError, "'x'"));
        assert_eq!(
            read_answer(Dynamic::UNIT).unwrap_err().kind,
            ErrorKind::OSError
        );
    }

    #[test]
    fn a_missing_manager_is_a_connection_refused_error() {
        let e = Conn::open("procscript-manager-test-nobody-listens", b"key")
            .err()
            .expect("nobody listens there");
        assert_eq!(e.kind, ErrorKind::ConnectionRefusedError);
        assert_eq!(e.errno, Some(111));
    }
}
