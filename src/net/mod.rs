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
//!   it (or ends and drops it); a forked child closing its inherited copy leaves the path.

pub mod package;

use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::PollFlags;
use nix::sys::socket::{self as sock, MsgFlags, SockFlag, SockaddrLike, SockaddrStorage, UnixAddr};
use nix::unistd::Pid;

use crate::error::{Error, ErrorKind, Result};

/// Python's `socket.AF_UNIX`.
pub const AF_UNIX: i64 = libc::AF_UNIX as i64;
/// Python's `socket.AF_INET`.
pub const AF_INET: i64 = libc::AF_INET as i64;
/// Python's `socket.AF_INET6`.
pub const AF_INET6: i64 = libc::AF_INET6 as i64;
/// Python's `socket.SOCK_STREAM`.
pub const SOCK_STREAM: i64 = libc::SOCK_STREAM as i64;
/// Python's `socket.SOCK_DGRAM`.
pub const SOCK_DGRAM: i64 = libc::SOCK_DGRAM as i64;

/// The backlog of `listen()` without an argument (CPython's default).
pub const DEFAULT_BACKLOG: i32 = 128;

/// The largest buffer one `recv` allocates: a stream read may always return less, and no
/// datagram procscript can send is larger.
const MAX_RECV: usize = 4 << 20;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
    /// Unix domain (a path in the file system).
    Unix,
}

impl Family {
    /// The family of a script's `AF_*` constant.
    pub fn from_raw(raw: i64) -> Result<Self> {
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
    pub fn name(self) -> &'static str {
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
pub enum Kind {
    /// A byte stream (TCP, or a Unix stream).
    Stream,
    /// Datagrams (UDP).
    Datagram,
}

impl Kind {
    /// The kind of a script's `SOCK_*` constant.
    pub fn from_raw(raw: i64) -> Result<Self> {
        match raw {
            SOCK_STREAM => Ok(Self::Stream),
            SOCK_DGRAM => Ok(Self::Datagram),
            _ => Err(Error::value(format!(
                "unknown socket type {raw} (expected SOCK_STREAM or SOCK_DGRAM)"
            ))),
        }
    }

    /// The constant's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stream => "SOCK_STREAM",
            Self::Datagram => "SOCK_DGRAM",
        }
    }
}

/// Which way `shutdown` closes.
pub use nix::sys::socket::Shutdown;

/// A datagram and where it came from.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Its bytes.
    pub data: Vec<u8>,
    /// The sender as `host:port` text (a path, or empty, for Unix sockets).
    pub addr: String,
    /// The sender's host, for IP sockets.
    pub host: Option<String>,
    /// The sender's port, for IP sockets.
    pub port: Option<u16>,
}

struct Inner {
    fd: Option<OwnedFd>,
    family: Family,
    kind: Kind,
    /// `None`: blocking. `Some`: the descriptor is non-blocking and each call waits at most this.
    timeout: Option<Duration>,
    /// The peer as `accept` or `connect` saw it, kept because `getpeername` fails once a
    /// peer has reset the connection.
    peer: Option<String>,
    /// A Unix path this socket bound, and the process that bound it (the only one that
    /// removes it).
    bound_path: Option<(PathBuf, Pid)>,
}

impl Inner {
    fn release(&mut self) {
        // Dropping the OwnedFd closes it; Linux closes the descriptor even when close
        // reports EINTR, so there is nothing to retry.
        self.fd = None;
        if let Some((path, pid)) = self.bound_path.take() {
            if pid == crate::process::my_pid() {
                let _ = std::fs::remove_file(path);
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
pub struct Socket(Rc<RefCell<Inner>>);

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
fn wait_ready(
    fd: BorrowedFd,
    events: PollFlags,
    deadline: Option<Instant>,
    what: &str,
) -> Result<()> {
    let deadline = crate::process::wait::Deadline::at(deadline);
    if crate::process::wait::wait_fd(fd, events.bits(), deadline, what)? {
        Ok(())
    } else {
        Err(timed_out(what))
    }
}

/// Runs `op` until it does not fail with `EINTR`; on `EAGAIN` (a socket with a timeout, or
/// one made non-blocking by another process sharing it) waits for readiness first.
fn retry<T>(
    fd: BorrowedFd,
    events: PollFlags,
    deadline: Option<Instant>,
    what: &str,
    mut op: impl FnMut(RawFd) -> nix::Result<T>,
) -> Result<T> {
    let raw = fd.as_raw_fd();
    loop {
        match op(raw) {
            Ok(value) => return Ok(value),
            Err(Errno::EINTR) => crate::signal::check()?,
            Err(Errno::EAGAIN) => wait_ready(fd, events, deadline, what)?,
            Err(e) => return Err(Error::os(what, e)),
        }
    }
}

/// The socket address for `host` and `port` in `family`: a literal address, `""` for any
/// address, or a name resolved by the system resolver.
fn inet_address(family: Family, host: &str, port: i64, what: &str) -> Result<SockaddrStorage> {
    let port = u16::try_from(port)
        .map_err(|_| Error::value(format!("{what}: port must be 0-65535, not {port}")))?;
    let wanted_v6 = family == Family::Inet6;
    let ip = if host.is_empty() {
        Some(if wanted_v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        })
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
    };
    let addr = match ip {
        Some(ip) => SocketAddr::new(ip, port),
        None => {
            let found = (host, port)
                .to_socket_addrs()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::OSError,
                        format!("{what}: cannot resolve `{host}`: {e}"),
                    )
                })?
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

impl Socket {
    /// A new socket of `family` and `kind`, close-on-exec, blocking.
    pub fn new(family: Family, kind: Kind) -> Result<Self> {
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
        Ok(Self::from_fd(fd, family, kind, None))
    }

    fn from_fd(fd: OwnedFd, family: Family, kind: Kind, peer: Option<String>) -> Self {
        Self(Rc::new(RefCell::new(Inner {
            fd: Some(fd),
            family,
            kind,
            timeout: None,
            peer,
            bound_path: None,
        })))
    }

    /// The address family.
    pub fn family(&self) -> Family {
        self.0.borrow().family
    }

    /// The socket type.
    pub fn kind(&self) -> Kind {
        self.0.borrow().kind
    }

    /// Runs `f` with the open descriptor and the deadline of a call starting now; a closed
    /// socket is `OSError` `EBADF`, as in Python.
    fn with_fd<T>(
        &self,
        what: &str,
        f: impl FnOnce(BorrowedFd, Option<Instant>) -> Result<T>,
    ) -> Result<T> {
        let inner = self.0.borrow();
        let Some(fd) = inner.fd.as_ref() else {
            return Err(Error::os(what, Errno::EBADF));
        };
        let deadline = inner
            .timeout
            .map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        f(fd.as_fd(), deadline)
    }

    fn expect_family(&self, unix: bool, what: &str) -> Result<()> {
        let family = self.family();
        if (family == Family::Unix) != unix {
            let wanted = if unix { "a path" } else { "a host and a port" };
            return Err(Error::new(
                ErrorKind::TypeError,
                format!("{what}: an {} socket takes {wanted}", family.name()),
            ));
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
    pub fn setsockopt(&self, level: i64, option: i64, value: i64) -> Result<()> {
        let what = format!("setsockopt({level}, {option}, {value})");
        let (Ok(level), Ok(option), Ok(value)) = (
            i32::try_from(level),
            i32::try_from(option),
            libc::c_int::try_from(value),
        ) else {
            return Err(Error::value(format!("{what}: arguments out of range")));
        };
        self.with_fd(&what, |fd, _| {
            // SAFETY: `fd` is an open descriptor, and the option value is a live c_int whose
            // size is passed alongside it.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    level,
                    option,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            Errno::result(rc).map(drop).map_err(|e| Error::os(&what, e))
        })
    }

    /// Binds to `host:port` (port 0: the OS chooses; host `""`: every address).
    pub fn bind(&self, host: &str, port: i64) -> Result<()> {
        let what = format!("bind to `{host}:{port}`");
        let addr = self.inet(host, port, &what)?;
        self.with_fd(&what, |fd, _| {
            sock::bind(fd.as_raw_fd(), &addr).map_err(|e| Error::os(&what, e))
        })
    }

    /// Binds a Unix socket to `path`; the path is removed again when this process closes it.
    pub fn bind_path(&self, path: &str) -> Result<()> {
        let what = format!("bind to `{path}`");
        let addr = self.unix(path, &what)?;
        self.with_fd(&what, |fd, _| {
            sock::bind(fd.as_raw_fd(), &addr).map_err(|e| Error::os(&what, e))
        })?;
        if addr.path().is_some() {
            self.0.borrow_mut().bound_path = Some((PathBuf::from(path), crate::process::my_pid()));
        }
        Ok(())
    }

    /// Listens with room for `backlog` connections waiting to be accepted.
    pub fn listen(&self, backlog: i64) -> Result<()> {
        let what = format!("listen({backlog})");
        let backlog = sock::Backlog::new(backlog.clamp(0, i64::from(i32::MAX)) as i32)
            .unwrap_or(sock::Backlog::MAXCONN);
        self.with_fd(&what, |fd, _| {
            sock::listen(&fd, backlog).map_err(|e| Error::os(&what, e))
        })
    }

    /// Waits for a connection and returns it, blocking and close-on-exec, with its peer's
    /// address recorded.
    pub fn accept(&self) -> Result<Socket> {
        let (family, kind) = (self.family(), self.kind());
        let fd = self.with_fd("accept", |fd, deadline| {
            retry(fd, PollFlags::POLLIN, deadline, "accept", |raw| {
                sock::accept4(raw, SockFlag::SOCK_CLOEXEC)
            })
        })?;
        // SAFETY: accept4 just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let peer = sock::getpeername::<SockaddrStorage>(fd.as_raw_fd())
            .ok()
            .map(|a| format_addr(&a));
        Ok(Self::from_fd(fd, family, kind, peer))
    }

    fn connect_to(&self, addr: &dyn SockaddrLike, what: &str) -> Result<()> {
        self.with_fd(what, |fd, deadline| {
            loop {
                match sock::connect(fd.as_raw_fd(), addr) {
                    Ok(()) => break,
                    // Interrupted or in progress: the connection goes on in the kernel; wait
                    // for it to finish and read its outcome (calling connect again would
                    // only say EALREADY).
                    Err(Errno::EINTR | Errno::EINPROGRESS | Errno::EALREADY) => {
                        wait_ready(fd, PollFlags::POLLOUT, deadline, what)?;
                        let err = sock::getsockopt(&fd, sock::sockopt::SocketError)
                            .map_err(|e| Error::os(what, e))?;
                        if err != 0 {
                            return Err(Error::os(what, Errno::from_raw(err)));
                        }
                        break;
                    }
                    Err(Errno::EAGAIN) if self.family() == Family::Unix => {
                        // A full Unix listen queue, on a non-blocking socket: wait and retry.
                        wait_ready(fd, PollFlags::POLLOUT, deadline, what)?;
                    }
                    Err(e) => return Err(Error::os(what, e)),
                }
            }
            Ok(())
        })?;
        let peer = self.with_fd(what, |fd, _| {
            Ok(sock::getpeername::<SockaddrStorage>(fd.as_raw_fd()).ok())
        })?;
        self.0.borrow_mut().peer = peer.map(|a| format_addr(&a));
        Ok(())
    }

    /// Connects to `host:port`.
    pub fn connect(&self, host: &str, port: i64) -> Result<()> {
        let what = format!("connect to `{host}:{port}`");
        let addr = self.inet(host, port, &what)?;
        self.connect_to(&addr, &what)
    }

    /// Connects a Unix socket to `path`.
    pub fn connect_path(&self, path: &str) -> Result<()> {
        let what = format!("connect to `{path}`");
        let addr = self.unix(path, &what)?;
        self.connect_to(&addr, &what)
    }

    /// Receives at most `n` bytes; an empty result means the peer closed its side.
    pub fn recv(&self, n: i64) -> Result<Vec<u8>> {
        let n = usize::try_from(n)
            .map_err(|_| Error::value(format!("recv({n}): negative buffer size")))?;
        let mut buf = vec![0u8; n.min(MAX_RECV)];
        let got = self.with_fd("recv", |fd, deadline| {
            retry(fd, PollFlags::POLLIN, deadline, "recv", |raw| {
                sock::recv(raw, &mut buf, MsgFlags::empty())
            })
        })?;
        buf.truncate(got);
        Ok(buf)
    }

    /// Receives one datagram of at most `n` bytes, and its sender.
    pub fn recvfrom(&self, n: i64) -> Result<Datagram> {
        let n = usize::try_from(n)
            .map_err(|_| Error::value(format!("recvfrom({n}): negative buffer size")))?;
        let mut buf = vec![0u8; n.min(MAX_RECV)];
        let (got, from) = self.with_fd("recvfrom", |fd, deadline| {
            retry(fd, PollFlags::POLLIN, deadline, "recvfrom", |raw| {
                sock::recvfrom::<SockaddrStorage>(raw, &mut buf)
            })
        })?;
        buf.truncate(got);
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

    /// Sends what the socket takes of `data` at once; returns how many bytes that was.
    pub fn send(&self, data: &[u8]) -> Result<usize> {
        self.with_fd("send", |fd, deadline| {
            retry(fd, PollFlags::POLLOUT, deadline, "send", |raw| {
                sock::send(raw, data, MsgFlags::MSG_NOSIGNAL)
            })
        })
    }

    /// Sends all of `data` (within one timeout, if the socket has one).
    pub fn sendall(&self, mut data: &[u8]) -> Result<()> {
        self.with_fd("sendall", |fd, deadline| {
            while !data.is_empty() {
                let sent = retry(fd, PollFlags::POLLOUT, deadline, "sendall", |raw| {
                    sock::send(raw, data, MsgFlags::MSG_NOSIGNAL)
                })?;
                data = &data[sent..];
            }
            Ok(())
        })
    }

    /// Sends a datagram to `host:port`.
    pub fn sendto(&self, data: &[u8], host: &str, port: i64) -> Result<usize> {
        let what = format!("sendto `{host}:{port}`");
        let addr = self.inet(host, port, &what)?;
        self.with_fd(&what, |fd, deadline| {
            retry(fd, PollFlags::POLLOUT, deadline, &what, |raw| {
                sock::sendto(raw, data, &addr, MsgFlags::MSG_NOSIGNAL)
            })
        })
    }

    /// Sets the timeout of each later call: `None` blocks, `Some(0)` never waits.
    pub fn settimeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.with_fd("settimeout", |fd, _| {
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
    pub fn timeout(&self) -> Option<Duration> {
        self.0.borrow().timeout
    }

    /// Shuts down reading, writing or both, for every process sharing the connection.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.with_fd("shutdown", |fd, _| {
            sock::shutdown(fd.as_raw_fd(), how).map_err(|e| Error::os("shutdown", e))
        })
    }

    /// Closes this process's descriptor (and removes a Unix path this process bound).
    /// Closing twice is fine.
    pub fn close(&self) {
        self.0.borrow_mut().release();
    }

    /// The descriptor number, -1 once closed.
    pub fn fileno(&self) -> RawFd {
        self.0.borrow().fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    fn local(&self) -> Option<SockaddrStorage> {
        let inner = self.0.borrow();
        sock::getsockname::<SockaddrStorage>(inner.fd.as_ref()?.as_raw_fd()).ok()
    }

    /// The local address as `host:port` (or the bound path), `None` once closed.
    pub fn local_addr(&self) -> Option<String> {
        self.local().map(|a| format_addr(&a))
    }

    /// The local port, for IP sockets.
    pub fn local_port(&self) -> Option<u16> {
        self.local().and_then(|a| host_and_port(&a).1)
    }

    /// The peer's address, `None` when not connected.
    pub fn peer_addr(&self) -> Option<String> {
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

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
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
