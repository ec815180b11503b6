//! The manager process: one poll loop that serves every client connection, single-threaded.
//!
//! Each process that uses a manager has its own connection (see [`super`]). A request is one
//! framed message (as on a `Pipe`: an 8-byte length, then [`codec`] bytes) holding
//! `[object id, method, [args]]`; the answer is `[true, value]` or
//! `[false, #{ kind, message }]`. The first message on a connection must be the manager's
//! authentication key, and the peer must run as the same user (`SO_PEERCRED`); anything
//! else is dropped.
//!
//! Requests that must wait (`Lock.acquire`, `Queue.get`, and `Queue.put` on a full queue)
//! park their connection in the object's waiter list and are answered when the lock is
//! released, a value arrives, room appears, or their deadline passes, so one waiting client
//! never holds up the others. A connection that closes (its process ended, even by SIGKILL)
//! leaves every waiter list, and a `Lock` it acquired and did not release is released.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, MsgFlags, SockFlag};
use rhai::{Array, Dynamic, Map, INT};

use super::objects::{self, Dict, List, Namespace, Value};
use crate::error::{Error, ErrorKind, Result};
use crate::ipc::pipe;
use crate::ipc::pipe::MAX_MESSAGE;

type ConnId = u64;

/// The manager itself, as the target of a request (`create`, `shutdown`).
pub(crate) const MANAGER: u64 = 0;

struct Conn {
    fd: OwnedFd,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    authenticated: bool,
    /// A request of this connection waits in an object's waiter list: later requests (a
    /// well-behaved client sends none) stay in `input` until it is answered.
    parked: bool,
}

struct Waiter {
    conn: ConnId,
    deadline: Option<Instant>,
}

/// Answers to send: to which connection, and what.
type Answers = Vec<(ConnId, Result<Dynamic>)>;

#[derive(Default)]
struct Lock {
    /// The connection that acquired it, while it is held.
    holder: Option<ConnId>,
    waiters: VecDeque<Waiter>,
}

impl Lock {
    fn settle(&mut self, out: &mut Answers) {
        if self.holder.is_none() {
            if let Some(w) = self.waiters.pop_front() {
                self.holder = Some(w.conn);
                out.push((w.conn, Ok(Dynamic::TRUE)));
            }
        }
    }

    fn expire(&mut self, now: Instant, out: &mut Answers) {
        self.waiters.retain(|w| {
            let expired = w.deadline.is_some_and(|d| d <= now);
            if expired {
                out.push((w.conn, Ok(Dynamic::FALSE)));
            }
            !expired
        });
    }

    fn forget(&mut self, conn: ConnId, out: &mut Answers) {
        self.waiters.retain(|w| w.conn != conn);
        if self.holder == Some(conn) {
            self.holder = None;
        }
        self.settle(out);
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Dynamic>,
    maxsize: usize,
    getters: VecDeque<Waiter>,
    putters: VecDeque<(Waiter, Dynamic)>,
}

fn empty() -> Error {
    Error::new(ErrorKind::Empty, "the Queue is empty")
}

fn full() -> Error {
    Error::new(ErrorKind::Full, "the Queue is full")
}

impl Queue {
    fn has_room(&self) -> bool {
        self.maxsize == 0 || self.items.len() < self.maxsize
    }

    /// Lets waiting putters in while there is room, and hands values to waiting getters,
    /// in arrival order.
    fn settle(&mut self, out: &mut Answers) {
        loop {
            while self.has_room() {
                let Some((w, value)) = self.putters.pop_front() else {
                    break;
                };
                self.items.push_back(value);
                out.push((w.conn, Ok(Dynamic::UNIT)));
            }
            if self.getters.is_empty() || self.items.is_empty() {
                return;
            }
            if let (Some(w), Some(value)) = (self.getters.pop_front(), self.items.pop_front()) {
                out.push((w.conn, Ok(value)));
            }
        }
    }

    fn expire(&mut self, now: Instant, out: &mut Answers) {
        let passed = |w: &Waiter| w.deadline.is_some_and(|d| d <= now);
        self.getters.retain(|w| {
            if passed(w) {
                out.push((w.conn, Err(empty())));
                return false;
            }
            true
        });
        self.putters.retain(|(w, _)| {
            if passed(w) {
                out.push((w.conn, Err(full())));
                return false;
            }
            true
        });
    }

    /// A connection went: its waiting gets end, and so do its waiting puts (their values
    /// were never put, as the `put` never returned).
    fn forget(&mut self, conn: ConnId, out: &mut Answers) {
        self.getters.retain(|w| w.conn != conn);
        self.putters.retain(|(w, _)| w.conn != conn);
        self.settle(out);
    }
}

enum Object {
    Dict(Dict),
    List(List),
    Value(Value),
    Namespace(Namespace),
    Lock(Lock),
    Queue(Queue),
}

/// What a request leads to.
enum Outcome {
    Answer(Result<Dynamic>),
    /// Parked in a waiter list with this deadline; answered later.
    Parked(Option<Instant>),
    Shutdown,
}

struct Server {
    listener: OwnedFd,
    authkey: Vec<u8>,
    uid: libc::uid_t,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    objects: HashMap<u64, Object>,
    next_object: u64,
    /// Locks and queues: the objects a closing connection may be waiting in.
    blocking: Vec<u64>,
    /// When parked requests time out (entries may be stale: checked when due).
    deadlines: BTreeSet<(Instant, u64)>,
    /// Connections answered after waiting, whose buffered requests may go on.
    resumed: Vec<ConnId>,
    stop: bool,
}

/// The largest first message (the key) a connection may send before it is authenticated.
const MAX_HELLO: u64 = 1024;

/// Runs the manager until a `shutdown` request; returns the exit code.
pub(crate) fn serve(listener: OwnedFd, authkey: Vec<u8>) -> i32 {
    // Ctrl-C at a terminal goes to every process of the foreground process group. In a
    // group of its own, the manager is out of its reach, so that a REPL that goes on after
    // Ctrl-C keeps its manager (CPython's manager ignores SIGINT for the same reason). The
    // SIGINT or SIGTERM its creator passes on as it stops still ends it at once.
    let _ = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
    // The sockets and pipes inherited from the creator: the manager uses none of them, and a
    // copy held here would keep a listening port bound, or hide the end of a pipe from its
    // reader, for as long as the manager runs. Regular files (a `--trace` events file) stay.
    crate::sys::fd::close_inherited_pipes_and_sockets(listener.as_raw_fd());
    let mut server = Server {
        listener,
        authkey,
        uid: nix::unistd::getuid().as_raw(),
        conns: HashMap::new(),
        next_conn: 1,
        objects: HashMap::new(),
        next_object: MANAGER + 1,
        blocking: Vec::new(),
        deadlines: BTreeSet::new(),
        resumed: Vec::new(),
        stop: false,
    };
    match server.run() {
        Ok(()) => 0,
        Err(e) => {
            let text = format!("procscript: the Manager process stopped: {e}");
            let _ = crate::output::write_line(crate::output::Stream::Stderr, &text);
            1
        }
    }
}

impl Server {
    fn run(&mut self) -> Result<()> {
        while !self.stop {
            let (listener_ready, ready) = self.poll()?;
            if listener_ready {
                self.accept();
            }
            // Read everything first, then handle the connections that ended, then the
            // requests: a process that ended before another sent its request is seen to
            // have ended (its locks released) before that request is handled.
            let mut ended = Vec::new();
            let mut requests = Vec::new();
            for (id, flags) in ready {
                if flags.contains(PollFlags::POLLOUT) {
                    self.flush(id);
                }
                if flags.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    if self.read(id) {
                        requests.push(id);
                    } else {
                        ended.push(id);
                    }
                }
            }
            for id in ended {
                // What it asked for before it went still happens (its answers are lost).
                self.process(id);
                self.close(id);
            }
            for id in requests {
                self.process(id);
            }
            self.expire();
            while let Some(id) = self.resumed.pop() {
                self.process(id);
            }
        }
        self.drain(Instant::now() + Duration::from_secs(1));
        Ok(())
    }

    /// Waits for the listener or a connection, or the next deadline.
    fn poll(&mut self) -> Result<(bool, Vec<(ConnId, PollFlags)>)> {
        let timeout = match self.deadlines.first() {
            None => PollTimeout::NONE,
            Some((at, _)) => {
                let ms = at
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        let mut fds = Vec::with_capacity(ids.len() + 1);
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        for id in &ids {
            let conn = &self.conns[id];
            let mut events = PollFlags::POLLIN;
            if conn.sent < conn.output.len() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(conn.fd.as_fd(), events));
        }
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::os("poll in the Manager", e)),
        }
        let flags: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        let listener_ready = !flags[0].is_empty();
        let ready = ids
            .into_iter()
            .zip(flags.into_iter().skip(1))
            .filter(|(_, f)| !f.is_empty())
            .collect();
        Ok((listener_ready, ready))
    }

    fn accept(&mut self) {
        loop {
            let fd = match crate::sys::fd::accept(
                self.listener.as_raw_fd(),
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            ) {
                Ok(fd) => fd,
                Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
                // EAGAIN: none left. EMFILE and friends: the client waits in the backlog.
                Err(_) => return,
            };
            let same_user = socket::getsockopt(&fd, sockopt::PeerCredentials)
                .is_ok_and(|cred| cred.uid() == self.uid);
            if !same_user {
                continue;
            }
            let id = self.next_conn;
            self.next_conn += 1;
            self.conns.insert(
                id,
                Conn {
                    fd,
                    input: Vec::new(),
                    output: Vec::new(),
                    sent: 0,
                    authenticated: false,
                    parked: false,
                },
            );
        }
    }

    /// Reads what a connection has sent; `false` once it has ended (or failed).
    fn read(&mut self, id: ConnId) -> bool {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return false;
            };
            match nix::unistd::read(&conn.fd, &mut buf) {
                Ok(0) => return false,
                // A short read took all there was: the next poll says when more comes
                // (saves a read that would only say EAGAIN, per request).
                Ok(n) if n < buf.len() => {
                    conn.input.extend_from_slice(&buf[..n]);
                    return true;
                }
                Ok(n) => conn.input.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return true,
                Err(_) => return false,
            }
            if !conn.authenticated && conn.input.len() as u64 > MAX_HELLO + 8 {
                return true;
            }
            if conn.input.len() as u64 > MAX_MESSAGE + 8 {
                // A whole message is buffered: handle it before reading on. A client that
                // sends that much while it should be waiting for an answer is dropped.
                return !conn.parked;
            }
        }
    }

    /// Handles the whole requests buffered on a connection, in order.
    fn process(&mut self, id: ConnId) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.parked {
                return;
            }
            let hello_too_long = conn
                .input
                .first_chunk::<8>()
                .is_some_and(|len| u64::from_le_bytes(*len) > MAX_HELLO);
            if !conn.authenticated && hello_too_long {
                return self.close(id);
            }
            // The framing of a `Pipe`: an 8-byte length, then the encoding.
            let message = match pipe::unframe(&conn.input, "a Manager connection") {
                Ok(Some((message, used))) => {
                    conn.input.drain(..used);
                    message
                }
                Ok(None) => return,
                Err(_) => return self.close(id),
            };
            if !conn.authenticated {
                if message.as_blob_ref().is_ok_and(|key| *key == self.authkey) {
                    conn.authenticated = true;
                    continue;
                }
                return self.close(id);
            }
            let Some((object, method, args)) = parse_request(message) else {
                return self.close(id);
            };
            match self.dispatch(id, object, &method, &args) {
                Outcome::Answer(answer) => self.answer(id, answer),
                Outcome::Parked(deadline) => {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.parked = true;
                    }
                    if let Some(at) = deadline {
                        self.deadlines.insert((at, object));
                    }
                }
                Outcome::Shutdown => {
                    self.answer(id, Ok(Dynamic::UNIT));
                    self.stop = true;
                    return;
                }
            }
        }
    }

    fn dispatch(&mut self, conn: ConnId, object: u64, method: &str, args: &[Dynamic]) -> Outcome {
        if object == MANAGER {
            return match method {
                "create" => Outcome::Answer(self.create(args)),
                "shutdown" => Outcome::Shutdown,
                _ => Outcome::Answer(Err(Error::new(
                    ErrorKind::AttributeError,
                    format!("a Manager has no method `{method}`"),
                ))),
            };
        }
        let Some(target) = self.objects.get_mut(&object) else {
            return Outcome::Answer(Err(Error::value(format!(
                "the Manager holds no object {object}"
            ))));
        };
        let mut answers = Answers::new();
        let outcome = match target {
            Object::Dict(d) => Outcome::Answer(d.call(method, args)),
            Object::List(l) => Outcome::Answer(l.call(method, args)),
            Object::Value(v) => Outcome::Answer(v.call(method, args)),
            Object::Namespace(n) => Outcome::Answer(n.call(method, args)),
            Object::Lock(lock) => lock_call(lock, conn, method, args, &mut answers),
            Object::Queue(queue) => queue_call(queue, conn, method, args, &mut answers),
        };
        self.send_answers(answers);
        outcome
    }

    fn create(&mut self, args: &[Dynamic]) -> Result<Dynamic> {
        let kind = objects::arg(args, 0)?
            .clone()
            .into_string()
            .map_err(|_| Error::value("corrupt create request"))?;
        let init = args.get(1);
        let object = match kind.as_str() {
            "dict" => Object::Dict(Dict::from_init(init)?),
            "list" => Object::List(List::from_init(init)?),
            "Value" => {
                let typecode = init
                    .and_then(|t| t.clone().into_string().ok())
                    .unwrap_or_default();
                Object::Value(Value::new(
                    typecode,
                    args.get(2).cloned().unwrap_or(Dynamic::UNIT),
                ))
            }
            "Namespace" => {
                let mut namespace = Namespace::default();
                if let Some(map) = init.and_then(|m| m.read_lock::<Map>().map(|m| m.clone())) {
                    for (name, value) in map {
                        namespace
                            .call("__setattr__", &[Dynamic::from(name.to_string()), value])
                            .map(drop)?;
                    }
                }
                Object::Namespace(namespace)
            }
            "Lock" => Object::Lock(Lock::default()),
            "Queue" => Object::Queue(Queue {
                maxsize: init.and_then(|m| m.as_int().ok()).unwrap_or(0).max(0) as usize,
                ..Queue::default()
            }),
            other => return Err(Error::value(format!("a Manager cannot make a `{other}`"))),
        };
        let id = self.next_object;
        self.next_object += 1;
        if matches!(object, Object::Lock(_) | Object::Queue(_)) {
            self.blocking.push(id);
        }
        self.objects.insert(id, object);
        Ok(Dynamic::from_int(id as INT))
    }

    /// Queues an answer on a connection and sends what the socket takes now.
    fn answer(&mut self, id: ConnId, answer: Result<Dynamic>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let reply = match answer {
            Ok(value) => Dynamic::from_array(vec![Dynamic::TRUE, value]),
            Err(e) => Dynamic::from_array(vec![Dynamic::FALSE, Dynamic::from_map(e.to_map())]),
        };
        let framed = pipe::frame(&reply, str::to_string).or_else(|e| {
            // Nested deeper than a message may be, once wrapped in the reply.
            let error = Error::value(format!("the answer cannot be sent: {}", e.message));
            let reply =
                Dynamic::from_array(vec![Dynamic::FALSE, Dynamic::from_map(error.to_map())]);
            pipe::frame(&reply, str::to_string)
        });
        if let Ok(framed) = framed {
            conn.output.extend_from_slice(&framed);
        }
        self.flush(id);
    }

    /// Answers parked requests, which lets their connections go on.
    fn send_answers(&mut self, answers: Answers) {
        for (id, answer) in answers {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.parked = false;
                self.resumed.push(id);
            }
            self.answer(id, answer);
        }
    }

    fn flush(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        while conn.sent < conn.output.len() {
            match socket::send(
                conn.fd.as_raw_fd(),
                &conn.output[conn.sent..],
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(n) => conn.sent += n,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => return self.close(id),
            }
        }
        conn.output.clear();
        conn.sent = 0;
    }

    /// A connection ended: it leaves every waiter list, and releases the locks it holds.
    fn close(&mut self, id: ConnId) {
        if self.conns.remove(&id).is_none() {
            return;
        }
        let mut answers = Answers::new();
        for object in &self.blocking {
            match self.objects.get_mut(object) {
                Some(Object::Lock(lock)) => lock.forget(id, &mut answers),
                Some(Object::Queue(queue)) => queue.forget(id, &mut answers),
                _ => {}
            }
        }
        self.send_answers(answers);
    }

    /// Answers the parked requests whose deadline has passed.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut answers = Answers::new();
        while let Some(&(at, object)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            match self.objects.get_mut(&object) {
                Some(Object::Lock(lock)) => lock.expire(now, &mut answers),
                Some(Object::Queue(queue)) => queue.expire(now, &mut answers),
                _ => {}
            }
        }
        self.send_answers(answers);
    }

    /// After `shutdown`: sends what is still buffered (the answer to `shutdown` above all),
    /// for at most until `deadline`.
    fn drain(&mut self, deadline: Instant) {
        loop {
            let pending: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| c.sent < c.output.len())
                .map(|(id, _)| *id)
                .collect();
            if pending.is_empty() || Instant::now() >= deadline {
                return;
            }
            for id in pending {
                self.flush(id);
            }
            let _ = self.poll();
        }
    }
}

/// `[object, method, [args]]`, or `None` for anything else.
fn parse_request(message: Dynamic) -> Option<(u64, String, Array)> {
    let mut parts = message.try_cast::<Array>()?;
    if parts.len() != 3 {
        return None;
    }
    let args = std::mem::take(&mut parts[2]).try_cast::<Array>()?;
    let method = std::mem::take(&mut parts[1]).into_string().ok()?;
    let object = u64::try_from(parts[0].as_int().ok()?).ok()?;
    Some((object, method, args))
}

/// A timeout argument on the wire: `()` for none, else seconds.
fn deadline(args: &[Dynamic], i: usize) -> Option<Instant> {
    let secs = args.get(i).and_then(|t| {
        t.as_float()
            .ok()
            .or_else(|| t.as_int().ok().map(|n| n as f64))
    })?;
    let wait = Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX);
    Some(
        Instant::now()
            .checked_add(wait)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)),
    )
}

fn lock_call(
    lock: &mut Lock,
    conn: ConnId,
    method: &str,
    args: &[Dynamic],
    answers: &mut Answers,
) -> Outcome {
    match method {
        "acquire" => {
            if lock.holder.is_none() && lock.waiters.is_empty() {
                lock.holder = Some(conn);
                return Outcome::Answer(Ok(Dynamic::TRUE));
            }
            let deadline = deadline(args, 0);
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Outcome::Answer(Ok(Dynamic::FALSE));
            }
            lock.waiters.push_back(Waiter { conn, deadline });
            Outcome::Parked(deadline)
        }
        "release" => {
            if lock.holder.is_none() {
                return Outcome::Answer(Err(Error::new(
                    ErrorKind::RuntimeError,
                    "release unlocked lock",
                )));
            }
            lock.holder = None;
            lock.settle(answers);
            Outcome::Answer(Ok(Dynamic::UNIT))
        }
        "locked" => Outcome::Answer(Ok(Dynamic::from_bool(lock.holder.is_some()))),
        _ => Outcome::Answer(Err(Error::new(
            ErrorKind::AttributeError,
            format!("a manager's Lock has no method `{method}`"),
        ))),
    }
}

fn queue_call(
    queue: &mut Queue,
    conn: ConnId,
    method: &str,
    args: &[Dynamic],
    answers: &mut Answers,
) -> Outcome {
    match method {
        "put" => {
            let Some(value) = args.first() else {
                return Outcome::Answer(Err(Error::value("corrupt put request")));
            };
            if queue.putters.is_empty() && queue.has_room() {
                queue.items.push_back(value.clone());
                queue.settle(answers);
                return Outcome::Answer(Ok(Dynamic::UNIT));
            }
            let deadline = deadline(args, 1);
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Outcome::Answer(Err(full()));
            }
            queue
                .putters
                .push_back((Waiter { conn, deadline }, value.clone()));
            Outcome::Parked(deadline)
        }
        "get" => {
            if queue.getters.is_empty() {
                if let Some(value) = queue.items.pop_front() {
                    queue.settle(answers);
                    return Outcome::Answer(Ok(value));
                }
            }
            let deadline = deadline(args, 0);
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Outcome::Answer(Err(empty()));
            }
            queue.getters.push_back(Waiter { conn, deadline });
            Outcome::Parked(deadline)
        }
        "qsize" => Outcome::Answer(Ok(Dynamic::from_int(queue.items.len() as INT))),
        "empty" => Outcome::Answer(Ok(Dynamic::from_bool(queue.items.is_empty()))),
        "full" => Outcome::Answer(Ok(Dynamic::from_bool(!queue.has_room()))),
        "maxsize" => Outcome::Answer(Ok(Dynamic::from_int(queue.maxsize as INT))),
        _ => Outcome::Answer(Err(Error::new(
            ErrorKind::AttributeError,
            format!("a manager's Queue has no method `{method}`"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_goes_to_waiters_in_order_and_to_none_once_its_holder_closes() {
        let mut lock = Lock::default();
        let mut out = Answers::new();
        assert!(matches!(
            lock_call(&mut lock, 1, "acquire", &[], &mut out),
            Outcome::Answer(Ok(_))
        ));
        assert!(matches!(
            lock_call(&mut lock, 2, "acquire", &[Dynamic::UNIT], &mut out),
            Outcome::Parked(None)
        ));
        assert!(matches!(
            lock_call(&mut lock, 3, "acquire", &[Dynamic::from_float(0.0)], &mut out),
            Outcome::Answer(Ok(v)) if !v.as_bool().unwrap()
        ));
        lock.forget(1, &mut out);
        assert_eq!(lock.holder, Some(2));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 2);
        lock.forget(2, &mut out);
        assert_eq!(lock.holder, None);
        assert!(matches!(
            lock_call(&mut lock, 3, "release", &[], &mut out),
            Outcome::Answer(Err(e)) if e.kind == ErrorKind::RuntimeError
        ));
    }

    #[test]
    fn a_bounded_queue_parks_putters_and_hands_values_to_getters() {
        let mut queue = Queue {
            maxsize: 1,
            ..Queue::default()
        };
        let mut out = Answers::new();
        let v = |n: INT| Dynamic::from_int(n);
        assert!(matches!(
            queue_call(&mut queue, 1, "put", &[v(1), Dynamic::UNIT], &mut out),
            Outcome::Answer(Ok(_))
        ));
        assert!(matches!(
            queue_call(&mut queue, 2, "put", &[v(2), Dynamic::UNIT], &mut out),
            Outcome::Parked(None)
        ));
        // A get takes 1 and lets 2 in.
        match queue_call(&mut queue, 3, "get", &[Dynamic::UNIT], &mut out) {
            Outcome::Answer(Ok(value)) => assert_eq!(value.as_int().unwrap(), 1),
            _ => panic!("get should answer at once"),
        }
        assert_eq!(out.len(), 1);
        assert_eq!(queue.items.len(), 1);
        out.clear();
        queue_call(&mut queue, 3, "get", &[Dynamic::UNIT], &mut out);
        assert!(matches!(
            queue_call(&mut queue, 4, "get", &[Dynamic::UNIT], &mut out),
            Outcome::Parked(None)
        ));
        queue_call(&mut queue, 5, "put", &[v(5), Dynamic::UNIT], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 4);
        assert!(queue.items.is_empty());
    }

    #[test]
    fn timed_waits_expire_with_pythons_answers() {
        let mut queue = Queue::default();
        let mut out = Answers::new();
        let soon = Dynamic::from_float(0.001);
        assert!(matches!(
            queue_call(&mut queue, 1, "get", std::slice::from_ref(&soon), &mut out),
            Outcome::Parked(Some(_))
        ));
        queue.expire(Instant::now() + Duration::from_secs(1), &mut out);
        assert!(matches!(&out[0], (1, Err(e)) if e.kind == ErrorKind::Empty));
    }
}
