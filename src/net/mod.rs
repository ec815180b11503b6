//! Sockets, as Python's `socket` module has them: TCP over IPv4 and IPv6, UDP, and Unix
//! stream sockets, blocking unless given a timeout.
//!
//! Lifecycle policy, enforced here:
//! - every descriptor is opened close-on-exec (`SOCK_CLOEXEC`, `accept4`);
//! - a [`Socket`] is a shared handle: clones share one descriptor, which closes at
//!   [`Socket::close`] or when the last handle in this process goes away. A socket handed
//!   to a child by `fork` is the child's own copy; the parent's closes when the parent's
//!   script lets go of it (a started process drops its arguments in the parent);
//! - sends use `MSG_NOSIGNAL`: a closed peer is a `BrokenPipeError`, never death by SIGPIPE;
//! - a call interrupted by a signal (the SIGCHLD reaper, typically) is retried, so scripts
//!   never see `EINTR`. Timeouts are waits in `poll` before the call, never `SO_RCVTIMEO`
//!   (a receive timeout makes Linux return `EINTR` even under `SA_RESTART`);
//! - a Unix socket bound to a path removes the path when the process that bound it closes
//!   it (or ends and drops it), and only while the path is still that socket (same device
//!   and inode as at bind); a forked child closing its inherited copy leaves the path;
//! - a socket with timeout 0 (`setblocking(false)`) never waits: a call that would is a
//!   `BlockingIOError`, as in Python;
//! - bytes read ahead by `readline` stay with the socket and are what the next `recv`
//!   returns, so line and byte reads can be mixed without losing data;
//! - `sendall` never blocks inside the kernel: it sends with `MSG_DONTWAIT` and waits in
//!   `wait_ready`, checking for Ctrl-C and SIGTERM on every round.

mod lines;
pub(crate) mod package;
pub(crate) mod select;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::PollFlags;
use nix::sys::socket::{self as sock, MsgFlags, SockFlag, SockaddrLike, SockaddrStorage, UnixAddr};
use nix::unistd::Pid;

use crate::convert::type_error;
use crate::error::{Error, ErrorKind, Result};
use crate::sys::Deadline;

/// Python's `socket.AF_UNIX`.
pub(crate) const AF_UNIX: i64 = libc::AF_UNIX as i64;
/// Python's `socket.AF_INET`.
pub(crate) const AF_INET: i64 = libc::AF_INET as i64;
/// Python's `socket.AF_INET6`.
pub(crate) const AF_INET6: i64 = libc::AF_INET6 as i64;
/// Python's `socket.SOCK_STREAM`.
pub(crate) const SOCK_STREAM: i64 = libc::SOCK_STREAM as i64;
/// Python's `socket.SOCK_DGRAM`.
pub(crate) const SOCK_DGRAM: i64 = libc::SOCK_DGRAM as i64;

/// The backlog of `listen()` without an argument (CPython's default).
pub(crate) const DEFAULT_BACKLOG: i32 = 128;

/// The largest buffer one `recv` allocates: a stream read may always return less, and no
/// datagram procscript can send is larger.
const MAX_RECV: usize = 4 << 20;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
    /// Unix domain (a path in the file system).
    Unix,
}

impl Family {
    /// The family of a script's `AF_*` constant.
    pub(crate) fn from_raw(raw: i64) -> Result<Self> {
        match raw {
            AF_INET => Ok(Self::Inet),
            AF_INET6 => Ok(Self::Inet6),
            AF_UNIX => Ok(Self::Unix),
            _ => Err(Error::value(format!(
                "unknown address family {raw} (expected AF_INET, AF_INET6 or AF_UNIX)"
            ))),
        }
    }

    /// The constant's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Inet => "AF_INET",
            Self::Inet6 => "AF_INET6",
            Self::Unix => "AF_UNIX",
        }
    }

    fn nix(self) -> sock::AddressFamily {
        match self {
            Self::Inet => sock::AddressFamily::Inet,
            Self::Inet6 => sock::AddressFamily::Inet6,
            Self::Unix => sock::AddressFamily::Unix,
        }
    }
}

/// A socket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A byte stream (TCP, or a Unix stream).
    Stream,
    /// Datagrams (UDP).
    Datagram,
}

impl Kind {
    /// The kind of a script's `SOCK_*` constant.
    pub(crate) fn from_raw(raw: i64) -> Result<Self> {
        match raw {
            SOCK_STREAM => Ok(Self::Stream),
            SOCK_DGRAM => Ok(Self::Datagram),
            _ => Err(Error::value(format!(
                "unknown socket type {raw} (expected SOCK_STREAM or SOCK_DGRAM)"
            ))),
        }
    }

    /// The constant's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Stream => "SOCK_STREAM",
            Self::Datagram => "SOCK_DGRAM",
        }
    }
}

/// Which way `shutdown` closes.
pub(crate) use nix::sys::socket::Shutdown;

/// A socket address as Python's `getsockname()` gives it: `(host, port)` for IPv4,
/// `(host, port, flowinfo, scope_id)` for IPv6, a path for Unix sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    /// An IPv4 address and port.
    V4 {
        /// The address as text, `127.0.0.1`.
        host: String,
        /// The port.
        port: u16,
    },
    /// An IPv6 address, port, flow label and scope.
    V6 {
        /// The address as text, `::1` (no brackets).
        host: String,
        /// The port.
        port: u16,
        /// The flow label.
        flowinfo: u32,
        /// The scope id (interface index of a link-local address).
        scope_id: u32,
    },
    /// A Unix socket's path: empty when unbound or unnamed; an abstract name starts with
    /// a NUL character.
    Unix(String),
}

impl Address {
    fn from_storage(addr: &SockaddrStorage) -> Self {
        if let Some(a) = addr.as_sockaddr_in() {
            Self::V4 {
                host: a.ip().to_string(),
                port: a.port(),
            }
        } else if let Some(a) = addr.as_sockaddr_in6() {
            Self::V6 {
                host: a.ip().to_string(),
                port: a.port(),
                flowinfo: a.flowinfo(),
                scope_id: a.scope_id(),
            }
        } else if let Some(a) = addr.as_unix_addr() {
            if let Some(path) = a.path() {
                Self::Unix(path.display().to_string())
            } else if let Some(name) = a.as_abstract() {
                Self::Unix(format!("\0{}", String::from_utf8_lossy(name)))
            } else {
                Self::Unix(String::new())
            }
        } else {
            Self::Unix(String::new())
        }
    }
}

/// A datagram and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Datagram {
    /// Its bytes.
    pub data: Vec<u8>,
    /// The sender as `host:port` text (a path, or empty, for Unix sockets).
    pub addr: String,
    /// The sender's host, for IP sockets.
    pub host: Option<String>,
    /// The sender's port, for IP sockets.
    pub port: Option<u16>,
}

/// A Unix path this socket bound: the process that bound it, and the file it made there, so
/// that closing removes that file and nothing that replaced it.
struct BoundPath {
    path: PathBuf,
    pid: Pid,
    dev: u64,
    ino: u64,
}

impl BoundPath {
    /// Whether `path` is still the socket file this socket made (same device and inode).
    fn still_ours(&self) -> bool {
        nix::sys::stat::lstat(&self.path).is_ok_and(|st| {
            st.st_dev == self.dev
                && st.st_ino == self.ino
                && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
        })
    }
}

struct Inner {
    fd: Option<OwnedFd>,
    family: Family,
    kind: Kind,
    /// `None`: blocking. `Some`: the descriptor is non-blocking and each call waits at most
    /// this (`Some(0)`: never waits).
    timeout: Option<Duration>,
    /// The peer as `accept` or `connect` saw it, kept because `getpeername` fails once a
    /// peer has reset the connection.
    peer: Option<String>,
    /// A Unix path this socket bound (removed at close by the process that bound it).
    bound: Option<BoundPath>,
    /// Bytes `readline` read past the line it returned: every later read takes them first.
    ahead: Vec<u8>,
}

impl Inner {
    fn release(&mut self) {
        // Dropping the OwnedFd closes it; Linux closes the descriptor even when close
        // reports EINTR, so there is nothing to retry.
        self.fd = None;
        self.ahead = Vec::new();
        if let Some(bound) = self.bound.take() {
            // Another server may have replaced the path since (after removing ours), or
            // anything else may be there now: remove only our own socket file.
            if bound.pid == crate::process::my_pid() && bound.still_ours() {
                let _ = std::fs::remove_file(&bound.path);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.release();
    }
}

/// A socket handle; clones share one descriptor, as Python objects do.
#[derive(Clone)]
pub(crate) struct Socket(Rc<RefCell<Inner>>);

thread_local! {
    /// `setdefaulttimeout`: the timeout new sockets start with (`None`: blocking).
    static DEFAULT_TIMEOUT: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// The timeout new sockets start with, `None` for blocking (Python's `getdefaulttimeout`).
pub(crate) fn default_timeout() -> Option<Duration> {
    DEFAULT_TIMEOUT.with(Cell::get)
}

/// Sets the timeout of sockets made from now on in this process (and in children forked
/// afterwards); existing sockets keep theirs.
pub(crate) fn set_default_timeout(timeout: Option<Duration>) {
    DEFAULT_TIMEOUT.with(|t| t.set(timeout));
}

/// Formats an address as scripts see it: `host:port`, `[v6]:port`, or a Unix path.
fn format_addr(addr: &SockaddrStorage) -> String {
    if let Some(a) = addr.as_sockaddr_in() {
        format!("{}:{}", a.ip(), a.port())
    } else if let Some(a) = addr.as_sockaddr_in6() {
        format!("[{}]:{}", a.ip(), a.port())
    } else if let Some(a) = addr.as_unix_addr() {
        a.path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    }
}

fn host_and_port(addr: &SockaddrStorage) -> (Option<String>, Option<u16>) {
    if let Some(a) = addr.as_sockaddr_in() {
        (Some(a.ip().to_string()), Some(a.port()))
    } else if let Some(a) = addr.as_sockaddr_in6() {
        (Some(a.ip().to_string()), Some(a.port()))
    } else {
        (None, None)
    }
}

fn timed_out(what: &str) -> Error {
    Error::new(ErrorKind::TimeoutError, format!("{what}: timed out"))
}

/// Waits until `fd` is ready for `events` or `deadline` passes (a `TimeoutError`).
/// Error conditions count as ready: the call that follows reports them.
fn wait_ready(fd: BorrowedFd, events: PollFlags, deadline: Deadline, what: &str) -> Result<()> {
    if crate::process::wait::wait_fd(fd, events.bits(), deadline, what)? {
        Ok(())
    } else {
        Err(timed_out(what))
    }
}

/// How long one call on a socket may wait, from the socket's timeout when the call starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// No timeout: wait as long as it takes.
    Block,
    /// A timeout: wait until then, then `TimeoutError`.
    Until(Deadline),
    /// Timeout 0 (non-blocking): never wait; `BlockingIOError` instead.
    NoWait,
}

impl Patience {
    fn of(timeout: Option<Duration>) -> Self {
        match timeout {
            None => Self::Block,
            Some(t) if t.is_zero() => Self::NoWait,
            Some(t) => Self::Until(Deadline::after(Some(t))),
        }
    }

    /// The flags of a data call: a socket with a timeout must not block in the kernel even
    /// if another handle on the same descriptor made it blocking again.
    fn flags(self) -> MsgFlags {
        match self {
            Self::Block => MsgFlags::empty(),
            _ => MsgFlags::MSG_DONTWAIT,
        }
    }
}

/// Waits for readiness as `patience` allows: a non-blocking socket fails at once with
/// `BlockingIOError` (errno 11).
fn wait_for(fd: BorrowedFd, events: PollFlags, patience: Patience, what: &str) -> Result<()> {
    match patience {
        Patience::NoWait => Err(Error::new(
            ErrorKind::BlockingIOError,
            format!("{what}: the socket is non-blocking and not ready (errno 11)"),
        )
        .with_errno(Errno::EAGAIN as i32)),
        Patience::Block => wait_ready(fd, events, Deadline::NEVER, what),
        Patience::Until(deadline) => wait_ready(fd, events, deadline, what),
    }
}

/// Runs `op` until it does not fail with `EINTR`; on `EAGAIN` (a socket with a timeout, or
/// one made non-blocking by another process sharing it) waits for readiness first.
fn retry<T>(
    fd: BorrowedFd,
    events: PollFlags,
    patience: Patience,
    what: &str,
    mut op: impl FnMut(RawFd) -> nix::Result<T>,
) -> Result<T> {
    let raw = fd.as_raw_fd();
    loop {
        match op(raw) {
            Ok(value) => return Ok(value),
            Err(Errno::EINTR) => crate::signal::check()?,
            Err(Errno::EAGAIN) => wait_for(fd, events, patience, what)?,
            Err(e) => return Err(Error::os(what, e)),
        }
    }
}

/// The port of a script's int, or a `ValueError`.
fn port_number(port: i64, what: &str) -> Result<u16> {
    u16::try_from(port)
        .map_err(|_| Error::value(format!("{what}: port must be 0-65535, not {port}")))
}

/// The socket address for `host` and `port` in `family`: a literal address, `""` for any
/// address, or a name resolved by the system resolver.
fn inet_address(family: Family, host: &str, port: i64, what: &str) -> Result<SockaddrStorage> {
    let port = port_number(port, what)?;
    let wanted_v6 = family == Family::Inet6;
    let ip = if host.is_empty() {
        Some(if wanted_v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        })
    } else {
        literal_ip(host)
    };
    let addr = match ip {
        Some(ip) => SocketAddr::new(ip, port),
        None => {
            let found = resolve(host, port, what)?
                .into_iter()
                .find(|a| a.is_ipv6() == wanted_v6);
            found.ok_or_else(|| {
                Error::new(
                    ErrorKind::OSError,
                    format!("{what}: `{host}` has no {} address", family.name()),
                )
            })?
        }
    };
    if addr.is_ipv6() != wanted_v6 {
        return Err(Error::new(
            ErrorKind::OSError,
            format!(
                "{what}: `{host}` is not an address of family {}",
                family.name()
            ),
        ));
    }
    Ok(SockaddrStorage::from(addr))
}

/// `host` as a literal address (`127.0.0.1`, `::1`, `[::1]`), if it is one.
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

/// Every address of `host` (a literal or a name, through the system resolver), in the
/// resolver's order.
fn resolve(host: &str, port: u16, what: &str) -> Result<Vec<SocketAddr>> {
    if host.is_empty() {
        return Ok(vec![SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        )]);
    }
    if let Some(ip) = literal_ip(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::new(
                ErrorKind::OSError,
                format!("{what}: cannot resolve `{host}`: {e}"),
            )
        })?
        .collect();
    if found.is_empty() {
        return Err(Error::new(
            ErrorKind::OSError,
            format!("{what}: `{host}` has no address"),
        ));
    }
    Ok(found)
}

/// What `create_server` takes beyond the address (Python's keyword arguments).
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    /// `AF_INET` (the default) or `AF_INET6`.
    pub family: Family,
    /// The listen backlog; `None` for `listen()`'s default.
    pub backlog: Option<i64>,
    /// Set `SO_REUSEPORT`, so that several sockets may listen on one port.
    pub reuse_port: bool,
    /// For `AF_INET6`: accept IPv4 connections too (else the socket is IPv6 only).
    pub dualstack_ipv6: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            family: Family::Inet,
            backlog: None,
            reuse_port: false,
            dualstack_ipv6: false,
        }
    }
}

/// A listening TCP socket on `host:port`, as Python's `socket.create_server`: `SO_REUSEADDR`
/// set (a restarted server can bind at once), `SO_REUSEPORT` if asked, IPv6-only unless
/// dual-stack is asked.
pub(crate) fn create_server(host: &str, port: i64, options: &ServerOptions) -> Result<Socket> {
    let what = format!("create_server on `{host}:{port}`");
    if options.family == Family::Unix {
        return Err(Error::value(format!(
            "{what}: family must be AF_INET or AF_INET6, not AF_UNIX"
        )));
    }
    if options.dualstack_ipv6 && options.family != Family::Inet6 {
        return Err(Error::value(format!(
            "{what}: dualstack_ipv6 needs family AF_INET6"
        )));
    }
    let socket = Socket::new(options.family, Kind::Stream)?;
    socket.setsockopt(libc::SOL_SOCKET.into(), libc::SO_REUSEADDR.into(), 1)?;
    if options.reuse_port {
        socket.setsockopt(libc::SOL_SOCKET.into(), libc::SO_REUSEPORT.into(), 1)?;
    }
    if options.family == Family::Inet6 {
        let v6only = i64::from(!options.dualstack_ipv6);
        socket.setsockopt(libc::IPPROTO_IPV6.into(), libc::IPV6_V6ONLY.into(), v6only)?;
    }
    socket.bind(host, port)?;
    socket.listen(options.backlog.unwrap_or(DEFAULT_BACKLOG.into()))?;
    Ok(socket)
}

/// A TCP connection to `host:port`, as Python's `socket.create_connection`: tries each
/// address the name resolves to in turn and fails with the last error. The socket gets
/// `timeout` before connecting (so the connect waits at most that) and keeps it. With
/// `source`, binds to that host and port first.
pub(crate) fn create_connection(
    host: &str,
    port: i64,
    timeout: Option<Duration>,
    source: Option<(&str, i64)>,
) -> Result<Socket> {
    let what = format!("create_connection to `{host}:{port}`");
    let port = port_number(port, &what)?;
    let mut last = None;
    for addr in resolve(host, port, &what)? {
        let family = if addr.is_ipv6() {
            Family::Inet6
        } else {
            Family::Inet
        };
        let attempt = || -> Result<Socket> {
            let socket = Socket::new(family, Kind::Stream)?;
            socket.settimeout(timeout)?;
            if let Some((source_host, source_port)) = source {
                socket.bind(source_host, source_port)?;
            }
            socket.connect_to(&SockaddrStorage::from(addr), &what)?;
            Ok(socket)
        };
        match attempt() {
            Ok(socket) => return Ok(socket),
            // Ctrl-C or SIGTERM ends the attempts at once.
            Err(e) if matches!(e.kind, ErrorKind::Interrupted(_)) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| Error::new(ErrorKind::OSError, format!("{what}: no address to try"))))
}

/// Two connected sockets (Python's `socket.socketpair`): `AF_UNIX` is the only family
/// Linux pairs.
pub(crate) fn socketpair(family: Family, kind: Kind) -> Result<(Socket, Socket)> {
    let what = format!("socketpair({}, {})", family.name(), kind.name());
    let ty = match kind {
        Kind::Stream => sock::SockType::Stream,
        Kind::Datagram => sock::SockType::Datagram,
    };
    let (a, b) = sock::socketpair(family.nix(), ty, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::os(&what, e))?;
    let a = Socket::from_fd(a, family, kind, None);
    let b = Socket::from_fd(b, family, kind, None);
    a.start_with_default_timeout()?;
    b.start_with_default_timeout()?;
    Ok((a, b))
}

impl Socket {
    /// A new socket of `family` and `kind`, close-on-exec, with the default timeout
    /// (blocking unless `setdefaulttimeout` said otherwise).
    pub(crate) fn new(family: Family, kind: Kind) -> Result<Self> {
        let ty = match kind {
            Kind::Stream => sock::SockType::Stream,
            Kind::Datagram => sock::SockType::Datagram,
        };
        let fd = sock::socket(family.nix(), ty, SockFlag::SOCK_CLOEXEC, None).map_err(|e| {
            Error::os(
                format_args!("socket({}, {})", family.name(), kind.name()),
                e,
            )
        })?;
        let socket = Self::from_fd(fd, family, kind, None);
        socket.start_with_default_timeout()?;
        Ok(socket)
    }

    fn from_fd(fd: OwnedFd, family: Family, kind: Kind, peer: Option<String>) -> Self {
        Self(Rc::new(RefCell::new(Inner {
            fd: Some(fd),
            family,
            kind,
            timeout: None,
            peer,
            bound: None,
            ahead: Vec::new(),
        })))
    }

    fn start_with_default_timeout(&self) -> Result<()> {
        match default_timeout() {
            None => Ok(()),
            timeout => self.settimeout(timeout),
        }
    }

    /// Whether `self` and `other` are the same socket (handles on one descriptor).
    pub(crate) fn same_as(&self, other: &Socket) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// The address family.
    pub(crate) fn family(&self) -> Family {
        self.0.borrow().family
    }

    /// The socket type.
    pub(crate) fn kind(&self) -> Kind {
        self.0.borrow().kind
    }

    /// Runs `f` with the open descriptor; a closed socket is `OSError` `EBADF`, as in
    /// Python.
    fn with_open_fd<T>(&self, what: &str, f: impl FnOnce(BorrowedFd) -> Result<T>) -> Result<T> {
        let inner = self.0.borrow();
        let Some(fd) = inner.fd.as_ref() else {
            return Err(Error::os(what, Errno::EBADF));
        };
        f(fd.as_fd())
    }

    /// Runs `f` with the open descriptor and the patience of a call starting now.
    fn with_fd<T>(
        &self,
        what: &str,
        f: impl FnOnce(BorrowedFd, Patience) -> Result<T>,
    ) -> Result<T> {
        let patience = Patience::of(self.timeout());
        self.with_open_fd(what, |fd| f(fd, patience))
    }

    fn expect_family(&self, unix: bool, what: &str) -> Result<()> {
        let family = self.family();
        if (family == Family::Unix) != unix {
            let (takes, given) = if family == Family::Unix {
                ("a path", "a host and a port")
            } else {
                ("a host and a port", "a path")
            };
            return Err(type_error(format!(
                "{what}: an {} socket takes {takes}, not {given}",
                family.name()
            )));
        }
        Ok(())
    }

    fn inet(&self, host: &str, port: i64, what: &str) -> Result<SockaddrStorage> {
        self.expect_family(false, what)?;
        inet_address(self.family(), host, port, what)
    }

    fn unix(&self, path: &str, what: &str) -> Result<UnixAddr> {
        self.expect_family(true, what)?;
        UnixAddr::new(path).map_err(|e| Error::os(what, e))
    }

    /// Sets an integer socket option (`setsockopt(level, option, value)`).
    pub(crate) fn setsockopt(&self, level: i64, option: i64, value: i64) -> Result<()> {
        let what = format!("setsockopt({level}, {option}, {value})");
        let (Ok(level), Ok(option), Ok(value)) = (
            i32::try_from(level),
            i32::try_from(option),
            libc::c_int::try_from(value),
        ) else {
            return Err(Error::value(format!("{what}: arguments out of range")));
        };
        self.with_open_fd(&what, |fd| {
            crate::sys::fd::setsockopt_int(fd, level, option, value)
                .map_err(|e| Error::os(&what, e))
        })
    }

    /// Reads an integer socket option (`getsockopt(level, option)`).
    pub(crate) fn getsockopt(&self, level: i64, option: i64) -> Result<i64> {
        let what = format!("getsockopt({level}, {option})");
        let (Ok(level), Ok(option)) = (i32::try_from(level), i32::try_from(option)) else {
            return Err(Error::value(format!("{what}: arguments out of range")));
        };
        self.with_open_fd(&what, |fd| {
            let value = crate::sys::fd::getsockopt_int(fd, level, option)
                .map_err(|e| Error::os(&what, e))?;
            Ok(i64::from(value))
        })
    }

    /// Binds to `host:port` (port 0: the OS chooses; host `""`: every address).
    pub(crate) fn bind(&self, host: &str, port: i64) -> Result<()> {
        let what = format!("bind to `{host}:{port}`");
        let addr = self.inet(host, port, &what)?;
        self.with_open_fd(&what, |fd| {
            sock::bind(fd.as_raw_fd(), &addr).map_err(|e| Error::os(&what, e))
        })
    }

    /// Binds a Unix socket to `path`; the path is removed again when this process closes
    /// it, if it is still the socket file made here.
    pub(crate) fn bind_path(&self, path: &str) -> Result<()> {
        let what = format!("bind to `{path}`");
        let addr = self.unix(path, &what)?;
        self.with_open_fd(&what, |fd| {
            sock::bind(fd.as_raw_fd(), &addr).map_err(|e| Error::os(&what, e))
        })?;
        if addr.path().is_some() {
            // Record which file bind made, so that close removes it and nothing else.
            if let Ok(st) = nix::sys::stat::lstat(path) {
                self.0.borrow_mut().bound = Some(BoundPath {
                    path: PathBuf::from(path),
                    pid: crate::process::my_pid(),
                    dev: st.st_dev,
                    ino: st.st_ino,
                });
            }
        }
        Ok(())
    }

    /// Listens with room for `backlog` connections waiting to be accepted.
    pub(crate) fn listen(&self, backlog: i64) -> Result<()> {
        let what = format!("listen({backlog})");
        let backlog = sock::Backlog::new(backlog.clamp(0, i64::from(i32::MAX)) as i32)
            .unwrap_or(sock::Backlog::MAXCONN);
        self.with_open_fd(&what, |fd| {
            sock::listen(&fd, backlog).map_err(|e| Error::os(&what, e))
        })
    }

    /// Waits for a connection and returns it, close-on-exec, with its peer's address
    /// recorded. The new socket has the default timeout (blocking unless
    /// `setdefaulttimeout` said otherwise), whatever the listener's, as in Python.
    pub(crate) fn accept(&self) -> Result<Socket> {
        let (family, kind) = (self.family(), self.kind());
        let fd = self.with_fd("accept", |fd, patience| {
            retry(fd, PollFlags::POLLIN, patience, "accept", |raw| {
                crate::sys::fd::accept(raw, SockFlag::SOCK_CLOEXEC)
            })
        })?;
        let peer = sock::getpeername::<SockaddrStorage>(fd.as_raw_fd())
            .ok()
            .map(|a| format_addr(&a));
        let socket = Self::from_fd(fd, family, kind, peer);
        socket.start_with_default_timeout()?;
        Ok(socket)
    }

    fn connect_to(&self, addr: &dyn SockaddrLike, what: &str) -> Result<()> {
        self.with_fd(what, |fd, patience| {
            loop {
                match sock::connect(fd.as_raw_fd(), addr) {
                    Ok(()) => break,
                    // Non-blocking: the connection goes on in the kernel; the script waits
                    // for it (select for writing) and reads SO_ERROR, as in Python.
                    Err(e @ (Errno::EINPROGRESS | Errno::EALREADY | Errno::EAGAIN))
                        if patience == Patience::NoWait =>
                    {
                        return Err(Error::os(what, e));
                    }
                    // Interrupted or in progress: the connection goes on in the kernel; wait
                    // for it to finish and read its outcome (calling connect again would
                    // only say EALREADY).
                    Err(Errno::EINTR | Errno::EINPROGRESS | Errno::EALREADY) => {
                        wait_for(fd, PollFlags::POLLOUT, patience, what)?;
                        let err = sock::getsockopt(&fd, sock::sockopt::SocketError)
                            .map_err(|e| Error::os(what, e))?;
                        if err != 0 {
                            return Err(Error::os(what, Errno::from_raw(err)));
                        }
                        break;
                    }
                    Err(Errno::EAGAIN) if self.family() == Family::Unix => {
                        // A full Unix listen queue, on a non-blocking socket: wait and retry.
                        wait_for(fd, PollFlags::POLLOUT, patience, what)?;
                    }
                    Err(e) => return Err(Error::os(what, e)),
                }
            }
            Ok(())
        })?;
        let peer = self.with_open_fd(what, |fd| {
            Ok(sock::getpeername::<SockaddrStorage>(fd.as_raw_fd()).ok())
        })?;
        self.0.borrow_mut().peer = peer.map(|a| format_addr(&a));
        Ok(())
    }

    /// Connects to `host:port`.
    pub(crate) fn connect(&self, host: &str, port: i64) -> Result<()> {
        let what = format!("connect to `{host}:{port}`");
        let addr = self.inet(host, port, &what)?;
        self.connect_to(&addr, &what)
    }

    /// Connects a Unix socket to `path`.
    pub(crate) fn connect_path(&self, path: &str) -> Result<()> {
        let what = format!("connect to `{path}`");
        let addr = self.unix(path, &what)?;
        self.connect_to(&addr, &what)
    }

    /// Takes up to `n` bytes that `readline` read ahead, if there are any; a closed socket
    /// is `EBADF`.
    fn take_ahead(&self, n: usize, what: &str) -> Result<Option<Vec<u8>>> {
        let mut inner = self.0.borrow_mut();
        if inner.fd.is_none() {
            return Err(Error::os(what, Errno::EBADF));
        }
        if inner.ahead.is_empty() {
            return Ok(None);
        }
        let n = n.min(inner.ahead.len());
        Ok(Some(inner.ahead.drain(..n).collect()))
    }

    /// Whether `readline` holds bytes read ahead (so a read returns at once).
    pub(crate) fn has_buffered(&self) -> bool {
        !self.0.borrow().ahead.is_empty()
    }

    /// Receives at most `n` bytes; an empty result means the peer closed its side. Bytes
    /// `readline` read ahead come first.
    pub(crate) fn recv(&self, n: i64) -> Result<Vec<u8>> {
        let n = usize::try_from(n)
            .map_err(|_| Error::value(format!("recv({n}): negative buffer size")))?;
        if let Some(buffered) = self.take_ahead(n, "recv")? {
            return Ok(buffered);
        }
        let mut buf = vec![0u8; n.min(MAX_RECV)];
        let got = self.with_fd("recv", |fd, patience| {
            retry(fd, PollFlags::POLLIN, patience, "recv", |raw| {
                sock::recv(raw, &mut buf, patience.flags())
            })
        })?;
        buf.truncate(got);
        Ok(buf)
    }

    /// Receives one datagram of at most `n` bytes, and its sender. (On a stream socket,
    /// bytes `readline` read ahead come first, from the peer.)
    pub(crate) fn recvfrom(&self, n: i64) -> Result<Datagram> {
        let n = usize::try_from(n)
            .map_err(|_| Error::value(format!("recvfrom({n}): negative buffer size")))?;
        let mut buf = vec![0u8; n.min(MAX_RECV)];
        let (buf, from) = match self.take_ahead(n, "recvfrom")? {
            Some(buffered) => {
                let peer = self.with_open_fd("recvfrom", |fd| {
                    Ok(sock::getpeername::<SockaddrStorage>(fd.as_raw_fd()).ok())
                })?;
                (buffered, peer)
            }
            None => {
                let (got, from) = self.with_fd("recvfrom", |fd, patience| {
                    retry(fd, PollFlags::POLLIN, patience, "recvfrom", |raw| {
                        recvfrom_flags(raw, &mut buf, patience.flags())
                    })
                })?;
                buf.truncate(got);
                (buf, from)
            }
        };
        let (addr, (host, port)) = match &from {
            Some(a) => (format_addr(a), host_and_port(a)),
            None => (String::new(), (None, None)),
        };
        Ok(Datagram {
            data: buf,
            addr,
            host,
            port,
        })
    }

    /// Reads into the read-ahead buffer once; false at the end of the stream.
    fn fill(&self, patience: Patience, what: &str) -> Result<bool> {
        let mut chunk = vec![0u8; 64 * 1024];
        let got = self.with_open_fd(what, |fd| {
            retry(fd, PollFlags::POLLIN, patience, what, |raw| {
                sock::recv(raw, &mut chunk, patience.flags())
            })
        })?;
        self.0.borrow_mut().ahead.extend_from_slice(&chunk[..got]);
        Ok(got > 0)
    }

    /// One line as bytes, its `\n` included; at most `limit` characters (UTF-8 sequences
    /// count as one). At the end of the stream, the rest without a newline, then empty.
    /// The socket's timeout covers the whole call; bytes read past the line stay for the
    /// next read, and so do the bytes of a line cut short by a timeout.
    pub(crate) fn readline(&self, limit: Option<usize>) -> Result<Vec<u8>> {
        let patience = Patience::of(self.timeout());
        // Scanning resumes where it stopped, so a long line costs linear time.
        let mut scan = lines::LineScan::new(limit);
        loop {
            {
                let mut inner = self.0.borrow_mut();
                if inner.fd.is_none() {
                    return Err(Error::os("readline", Errno::EBADF));
                }
                if let Some(end) = scan.find(&inner.ahead, false) {
                    return Ok(inner.ahead.drain(..end).collect());
                }
            }
            if !self.fill(patience, "readline")? {
                let mut inner = self.0.borrow_mut();
                let end = scan.find(&inner.ahead, true).unwrap_or(inner.ahead.len());
                return Ok(inner.ahead.drain(..end).collect());
            }
        }
    }

    /// [`readline`](Self::readline) as text. A line that is not UTF-8 is a `ValueError`, and
    /// its bytes stay unread (a `recv` gets them).
    pub(crate) fn readline_text(&self, limit: Option<usize>) -> Result<String> {
        let line = self.readline(limit)?;
        String::from_utf8(line).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let mut inner = self.0.borrow_mut();
            let rest = std::mem::take(&mut inner.ahead);
            inner.ahead = e.into_bytes();
            inner.ahead.extend_from_slice(&rest);
            Error::value(format!(
                "readline: the line is not UTF-8 (at byte {at}); its bytes are left for recv"
            ))
        })
    }

    /// Sends what the socket takes of `data` at once; returns how many bytes that was.
    pub(crate) fn send(&self, data: &[u8]) -> Result<usize> {
        self.with_fd("send", |fd, patience| {
            retry(fd, PollFlags::POLLOUT, patience, "send", |raw| {
                sock::send(raw, data, MsgFlags::MSG_NOSIGNAL | patience.flags())
            })
        })
    }

    /// Sends all of `data` (within one timeout, if the socket has one). Never blocks in the
    /// kernel: Ctrl-C and SIGTERM stop it within one wait slice however full the peer is.
    pub(crate) fn sendall(&self, mut data: &[u8]) -> Result<()> {
        self.with_fd("sendall", |fd, patience| {
            while !data.is_empty() {
                // Check on every round, not only on EINTR: a send interrupted after it took
                // some bytes returns a short count instead.
                crate::signal::check()?;
                let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
                match sock::send(fd.as_raw_fd(), data, flags) {
                    Ok(sent) => data = &data[sent..],
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => wait_for(fd, PollFlags::POLLOUT, patience, "sendall")?,
                    Err(e) => return Err(Error::os("sendall", e)),
                }
            }
            Ok(())
        })
    }

    /// Sends a datagram to `host:port`.
    pub(crate) fn sendto(&self, data: &[u8], host: &str, port: i64) -> Result<usize> {
        let what = format!("sendto `{host}:{port}`");
        let addr = self.inet(host, port, &what)?;
        self.with_fd(&what, |fd, patience| {
            retry(fd, PollFlags::POLLOUT, patience, &what, |raw| {
                sock::sendto(raw, data, &addr, MsgFlags::MSG_NOSIGNAL | patience.flags())
            })
        })
    }

    /// Sets the timeout of each later call: `None` blocks, `Some(0)` never waits.
    pub(crate) fn settimeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.with_open_fd("settimeout", |fd| {
            let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| Error::os("settimeout", e))?;
            let mut flags = OFlag::from_bits_truncate(flags);
            flags.set(OFlag::O_NONBLOCK, timeout.is_some());
            fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(|e| Error::os("settimeout", e))?;
            Ok(())
        })?;
        self.0.borrow_mut().timeout = timeout;
        Ok(())
    }

    /// The timeout, `None` for a blocking socket.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.0.borrow().timeout
    }

    /// `setblocking(true)` is `settimeout(None)`; `setblocking(false)` is `settimeout(0)`.
    pub(crate) fn setblocking(&self, blocking: bool) -> Result<()> {
        self.settimeout((!blocking).then_some(Duration::ZERO))
    }

    /// False only for a socket with timeout 0 (Python's `getblocking`).
    pub(crate) fn getblocking(&self) -> bool {
        self.timeout() != Some(Duration::ZERO)
    }

    /// A new socket on a duplicate of the descriptor (close-on-exec), with the same
    /// timeout. The two share the connection, and the file status flags (non-blocking
    /// mode) with it; a Unix path stays with the original, which removes it, and so do
    /// bytes `readline` read ahead.
    pub(crate) fn dup(&self) -> Result<Socket> {
        let fd = self.with_open_fd("dup", |fd| {
            fd.try_clone_to_owned()
                .map_err(|e| Error::os("dup", Errno::from_raw(e.raw_os_error().unwrap_or(0))))
        })?;
        let (family, kind, peer, timeout) = {
            let inner = self.0.borrow();
            (inner.family, inner.kind, inner.peer.clone(), inner.timeout)
        };
        let copy = Self::from_fd(fd, family, kind, peer);
        // The descriptor's flags are shared, so the mode is already right; only the
        // timeout value is per handle.
        copy.0.borrow_mut().timeout = timeout;
        Ok(copy)
    }

    /// Shuts down reading, writing or both, for every process sharing the connection.
    pub(crate) fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.with_open_fd("shutdown", |fd| {
            sock::shutdown(fd.as_raw_fd(), how).map_err(|e| Error::os("shutdown", e))
        })
    }

    /// Closes this process's descriptor (and removes a Unix path this process bound, if
    /// the path is still that socket). Closing twice is fine.
    pub(crate) fn close(&self) {
        self.0.borrow_mut().release();
    }

    /// The descriptor number, -1 once closed.
    pub(crate) fn fileno(&self) -> RawFd {
        self.0.borrow().fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// The local address (Python's `getsockname`); `EBADF` once closed.
    pub(crate) fn getsockname(&self) -> Result<Address> {
        self.with_open_fd("getsockname", |fd| {
            sock::getsockname::<SockaddrStorage>(fd.as_raw_fd())
                .map(|a| Address::from_storage(&a))
                .map_err(|e| Error::os("getsockname", e))
        })
    }

    /// The peer's address (Python's `getpeername`); `ENOTCONN` (errno 107) when not
    /// connected.
    pub(crate) fn getpeername(&self) -> Result<Address> {
        self.with_open_fd("getpeername", |fd| {
            sock::getpeername::<SockaddrStorage>(fd.as_raw_fd())
                .map(|a| Address::from_storage(&a))
                .map_err(|e| Error::os("getpeername", e))
        })
    }

    fn local(&self) -> Option<SockaddrStorage> {
        let inner = self.0.borrow();
        sock::getsockname::<SockaddrStorage>(inner.fd.as_ref()?.as_raw_fd()).ok()
    }

    /// The local address as `host:port` (or the bound path), `None` once closed.
    pub(crate) fn local_addr(&self) -> Option<String> {
        self.local().map(|a| format_addr(&a))
    }

    /// The local port, for IP sockets.
    pub(crate) fn local_port(&self) -> Option<u16> {
        self.local().and_then(|a| host_and_port(&a).1)
    }

    /// The peer's address, `None` when not connected.
    pub(crate) fn peer_addr(&self) -> Option<String> {
        let inner = self.0.borrow();
        if inner.peer.is_some() {
            return inner.peer.clone();
        }
        let fd = inner.fd.as_ref()?;
        sock::getpeername::<SockaddrStorage>(fd.as_raw_fd())
            .ok()
            .map(|a| format_addr(&a))
    }
}

/// `recvfrom(2)` with flags (nix's `recvfrom` takes none).
fn recvfrom_flags(
    fd: RawFd,
    buf: &mut [u8],
    flags: MsgFlags,
) -> nix::Result<(usize, Option<SockaddrStorage>)> {
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = sock::recvmsg::<SockaddrStorage>(fd, &mut iov, None, flags)?;
    Ok((msg.bytes, msg.address))
}

impl fmt::Display for Socket {
    /// `<socket fd=3 family=AF_INET type=SOCK_STREAM laddr=127.0.0.1:8081>`, as Python's repr.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (family, kind) = (self.family(), self.kind());
        match self.fileno() {
            -1 => write!(
                f,
                "<socket [closed] family={} type={}>",
                family.name(),
                kind.name()
            ),
            fd => {
                write!(
                    f,
                    "<socket fd={fd} family={} type={}",
                    family.name(),
                    kind.name()
                )?;
                if let Some(local) = self.local_addr().filter(|a| !a.is_empty()) {
                    write!(f, " laddr={local}")?;
                }
                if let Some(peer) = self.peer_addr().filter(|a| !a.is_empty()) {
                    write!(f, " raddr={peer}")?;
                }
                f.write_str(">")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_format_like_host_port() {
        let v4 = inet_address(Family::Inet, "127.0.0.1", 8081, "t").unwrap();
        assert_eq!(format_addr(&v4), "127.0.0.1:8081");
        let v6 = inet_address(Family::Inet6, "::1", 80, "t").unwrap();
        assert_eq!(format_addr(&v6), "[::1]:80");
        let any = inet_address(Family::Inet, "", 0, "t").unwrap();
        assert_eq!(format_addr(&any), "0.0.0.0:0");
    }

    #[test]
    fn bad_ports_and_families_are_value_errors() {
        assert_eq!(
            inet_address(Family::Inet, "127.0.0.1", 70000, "t")
                .unwrap_err()
                .kind,
            ErrorKind::ValueError
        );
        assert_eq!(
            inet_address(Family::Inet, "::1", 1, "t").unwrap_err().kind,
            ErrorKind::OSError
        );
        assert_eq!(
            Family::from_raw(99).unwrap_err().kind,
            ErrorKind::ValueError
        );
    }

    #[test]
    fn closed_socket_is_ebadf_and_close_is_idempotent() {
        let s = Socket::new(Family::Inet, Kind::Stream).unwrap();
        assert!(s.fileno() >= 0);
        s.close();
        s.close();
        assert_eq!(s.fileno(), -1);
        let err = s.recv(10).unwrap_err();
        assert_eq!(err.errno, Some(libc::EBADF));
    }
}
