//! `select(rlist, wlist, xlist, timeout)`, as Python's `select.select`, over descriptors:
//! which are readable, writable, or have an exceptional condition (out-of-band data).
//!
//! Built on `poll`, with `select(2)`'s meaning of each condition (Linux's `POLLIN_SET`,
//! `POLLOUT_SET`, `POLLEX_SET`): a hang-up or an error counts as readable, an error as
//! writable. The wait itself is the process core's one wait loop, so children are reaped
//! and Ctrl-C or SIGTERM end it.

use std::os::fd::RawFd;
use std::time::Duration;

use nix::errno::Errno;

use crate::error::{Error, Result};

/// Conditions `select` reports readable.
const READABLE: libc::c_short = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
/// Conditions `select` reports writable.
const WRITABLE: libc::c_short = libc::POLLOUT | libc::POLLERR;
/// Conditions `select` reports exceptional.
const EXCEPTIONAL: libc::c_short = libc::POLLPRI;

/// Which of its three lists a descriptor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// `rlist`: ready to read.
    Read,
    /// `wlist`: ready to write.
    Write,
    /// `xlist`: an exceptional condition.
    Except,
}

impl Want {
    fn events(self) -> libc::c_short {
        match self {
            Self::Read => libc::POLLIN,
            Self::Write => libc::POLLOUT,
            Self::Except => libc::POLLPRI,
        }
    }

    fn met_by(self, revents: libc::c_short) -> bool {
        let set = match self {
            Self::Read => READABLE,
            Self::Write => WRITABLE,
            Self::Except => EXCEPTIONAL,
        };
        revents & set != 0
    }
}

/// One entry of a `select`: a descriptor, what it is wanted for, and whether it is ready
/// already without asking the kernel (a socket holding bytes read ahead).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// The descriptor.
    pub fd: RawFd,
    /// Its list.
    pub want: Want,
    /// Ready whatever the kernel says.
    pub ready_now: bool,
}

/// Waits until at least one entry is ready or `timeout` passes (`None`: no limit), and
/// returns which entries are ready (one flag per entry, in order). A descriptor that is
/// not open is `OSError` `EBADF`, as `select(2)` reports it. Nothing to wait for and no
/// timeout would block forever: a `ValueError` instead.
pub(crate) fn select(entries: &[Entry], timeout: Option<Duration>) -> Result<Vec<bool>> {
    if entries.is_empty() && timeout.is_none() {
        return Err(Error::value(
            "select: nothing to wait for and no timeout (this would wait forever; use sleep)",
        ));
    }
    if let Some(bad) = entries.iter().find(|e| e.fd < 0) {
        return Err(Error::value(format!(
            "select: a descriptor cannot be negative ({}): is it closed?",
            bad.fd
        )));
    }
    let deadline = crate::sys::Deadline::after(timeout);
    let mut fds: Vec<libc::pollfd> = entries
        .iter()
        .map(|e| libc::pollfd {
            fd: e.fd,
            events: e.want.events(),
            revents: 0,
        })
        .collect();
    let any_now = entries.iter().any(|e| e.ready_now);
    // Look once without waiting; wait only if nothing is ready and there is time left.
    if !poll_now(&mut fds)? && !any_now && timeout != Some(Duration::ZERO) {
        for fd in &mut fds {
            fd.revents = 0;
        }
        if !crate::process::wait::wait_ready_or_signal(&mut fds, deadline, "select")? {
            for fd in &mut fds {
                fd.revents = 0;
            }
        }
    }
    if fds.iter().any(|fd| fd.revents & libc::POLLNVAL != 0) {
        return Err(Error::os("select", Errno::EBADF));
    }
    Ok(entries
        .iter()
        .zip(&fds)
        .map(|(entry, fd)| entry.ready_now || entry.want.met_by(fd.revents))
        .collect())
}

/// One `poll` that does not wait; whether any descriptor is ready.
fn poll_now(fds: &mut [libc::pollfd]) -> Result<bool> {
    loop {
        match crate::sys::fd::poll_now(fds) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => crate::signal::check()?,
            Err(e) => return Err(Error::os("select", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_mean_what_select_means() {
        assert!(Want::Read.met_by(libc::POLLIN));
        assert!(Want::Read.met_by(libc::POLLHUP));
        assert!(Want::Read.met_by(libc::POLLERR));
        assert!(!Want::Read.met_by(libc::POLLOUT));
        assert!(Want::Write.met_by(libc::POLLOUT));
        assert!(Want::Write.met_by(libc::POLLERR));
        assert!(!Want::Write.met_by(libc::POLLHUP));
        assert!(Want::Except.met_by(libc::POLLPRI));
        assert!(!Want::Except.met_by(libc::POLLIN));
    }

    #[test]
    fn nothing_to_wait_for_forever_is_a_value_error() {
        let err = select(&[], None).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::ValueError);
        assert_eq!(
            select(&[], Some(Duration::ZERO)).unwrap(),
            Vec::<bool>::new()
        );
    }

    #[test]
    fn a_closed_descriptor_is_ebadf() {
        let entry = Entry {
            fd: 1_000_000,
            want: Want::Read,
            ready_now: false,
        };
        assert_eq!(
            select(&[entry], Some(Duration::ZERO)).unwrap_err().errno,
            Some(libc::EBADF)
        );
    }
}
