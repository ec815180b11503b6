//! Descriptors the kernel hands out or takes as bare numbers, made safe to use: each
//! function here owns or borrows what it is given for exactly as long as it is sound to.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::SockFlag;

/// `accept4` on `listener`: the new connection, owned.
pub(crate) fn accept(listener: RawFd, flags: SockFlag) -> nix::Result<OwnedFd> {
    let raw = nix::sys::socket::accept4(listener, flags)?;
    // SAFETY: accept4 just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A pidfd for `pid` (close-on-exec): readable once that process has ended.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the descriptor was just created for us and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `setsockopt(level, option)` with an int value, for options nix has no type for (Python
/// takes any number).
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> nix::Result<()> {
    // SAFETY: `fd` is an open descriptor, and the option value is a live c_int whose size
    // is passed alongside it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop)
}

/// `getsockopt(level, option)` of an int option.
pub(crate) fn getsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
) -> nix::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open descriptor; `value` and `len` are live locals, and `len` says
    // how many bytes `value` holds.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    Errno::result(rc).map(|_| value)
}

/// How many bytes are waiting in the pipe or socket `fd` (`FIONREAD`).
pub(crate) fn readable_bytes(fd: BorrowedFd<'_>) -> nix::Result<usize> {
    let mut available: libc::c_int = 0;
    // SAFETY: FIONREAD writes the number of bytes waiting into the int it is given.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut available) };
    Errno::result(rc).map(|_| available.max(0) as usize)
}

/// One `poll` of `fds` that does not wait: how many are ready (their `revents` say which).
pub(crate) fn poll_now(fds: &mut [libc::pollfd]) -> nix::Result<usize> {
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    Errno::result(ready).map(|n| n as usize)
}

/// Closes every descriptor above 2 but `keep` that is a socket or a pipe: for a process
/// (a manager) that must not hold copies of what it inherited. Regular files stay open.
pub(crate) fn close_inherited_pipes_and_sockets(keep: RawFd) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2 && fd != keep)
        .collect();
    for fd in fds {
        // SAFETY: `fd` was listed in /proc/self/fd just now and nothing closed it since;
        // the borrow does not outlive this call.
        let Ok(stat) = nix::sys::stat::fstat(unsafe { BorrowedFd::borrow_raw(fd) }) else {
            continue;
        };
        let kind = stat.st_mode & libc::S_IFMT;
        if kind == libc::S_IFSOCK || kind == libc::S_IFIFO {
            // SAFETY: an inherited descriptor that the caller promised nothing in this
            // process uses (it then `_exit`s without dropping its copies).
            unsafe { libc::close(fd) };
        }
    }
}

/// Fills `bytes` from the kernel's random source (or, failing that, a generator seeded with
/// the clock and the pid).
pub(crate) fn fill_random(bytes: &mut [u8]) {
    // SAFETY: the buffer is valid for writes of its length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        let mut rng = fastrand::Rng::with_seed(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id()),
        );
        rng.fill(bytes);
    }
}
