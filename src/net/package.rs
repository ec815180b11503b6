//! The Rhai surface of sockets: `socket`, `bind`, `accept`, `recv`, `send` ..., the `AF_*`
//! constants, `select`, the bytes helpers (`decode`, `encode`, `upper`) and `input`.
//!
//! Glue only: converts script values to [`Socket`] calls and errors to catchable maps.

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Array, Blob, Dynamic, EvalAltResult, ImmutableString, Map, INT};

use super::select::{Entry, Want};
use super::{Address, Family, Kind, ServerOptions, Shutdown, Socket};
use crate::error::{Error, ErrorKind};
use crate::ipc::pipe::Connection;
use crate::output::{self, Stream};
use crate::process::package::seconds;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// The constants scripts see, with Linux's (and so Python's) values.
pub const CONSTANTS: &[(&str, i64)] = &[
    ("AF_UNIX", super::AF_UNIX),
    ("AF_INET", super::AF_INET),
    ("AF_INET6", super::AF_INET6),
    ("SOCK_STREAM", super::SOCK_STREAM),
    ("SOCK_DGRAM", super::SOCK_DGRAM),
    ("SOL_SOCKET", libc::SOL_SOCKET as i64),
    ("SO_REUSEADDR", libc::SO_REUSEADDR as i64),
    ("SO_REUSEPORT", libc::SO_REUSEPORT as i64),
    ("SO_KEEPALIVE", libc::SO_KEEPALIVE as i64),
    ("SO_BROADCAST", libc::SO_BROADCAST as i64),
    ("SO_RCVBUF", libc::SO_RCVBUF as i64),
    ("SO_SNDBUF", libc::SO_SNDBUF as i64),
    ("SO_TYPE", libc::SO_TYPE as i64),
    ("SO_ERROR", libc::SO_ERROR as i64),
    ("SO_ACCEPTCONN", libc::SO_ACCEPTCONN as i64),
    ("IPPROTO_TCP", libc::IPPROTO_TCP as i64),
    ("TCP_NODELAY", libc::TCP_NODELAY as i64),
    ("IPPROTO_IPV6", libc::IPPROTO_IPV6 as i64),
    ("IPV6_V6ONLY", libc::IPV6_V6ONLY as i64),
    ("SHUT_RD", libc::SHUT_RD as i64),
    ("SHUT_WR", libc::SHUT_WR as i64),
    ("SHUT_RDWR", libc::SHUT_RDWR as i64),
];

def_package! {
    /// Sockets: `socket`, `bind`, `listen`, `accept`, `connect`, `recv`, `send` ... with
    /// Python's names, the `AF_*`/`SOCK_*`/`SO_*` constants (global, so visible inside `fn`
    /// bodies too), the bytes helpers `decode`/`encode`/`upper`, and `input`.
    pub NetPackage(lib) {
        combine_with_exported_module!(lib, "net", net_functions);
        lib.set_iterable_result::<SocketLines, String>();
        for (name, value) in CONSTANTS {
            lib.set_var(*name, *value as INT);
        }
    }
}

/// Calls `f` with the bytes of a blob or a string (its UTF-8).
fn with_bytes<T>(
    _ctx: &NativeCallContext,
    data: &Dynamic,
    what: &str,
    f: impl FnOnce(&[u8]) -> Result<T, Error>,
) -> Result<T, Error> {
    if let Some(blob) = data.read_lock::<Blob>() {
        return f(&blob);
    }
    if let Some(text) = data.read_lock::<ImmutableString>() {
        return f(text.as_bytes());
    }
    Err(Error::new(
        ErrorKind::TypeError,
        format!(
            "{what}: data must be a blob or a string, not {}",
            crate::error::type_name(data)
        ),
    ))
}

/// A timeout argument: seconds (an int or a float, not negative) or `()` for none.
fn timeout_arg(
    _ctx: &NativeCallContext,
    value: &Dynamic,
    what: &str,
) -> Result<Option<std::time::Duration>, Error> {
    if !(value.is_unit() || value.is_int() || value.is_float()) {
        return Err(Error::new(
            ErrorKind::TypeError,
            format!(
                "{what} must be a number of seconds or (), not {}",
                crate::error::type_name(value)
            ),
        ));
    }
    seconds(value, what)
}

/// Python's truth of a flag argument: a bool, or an int (`setblocking(0)`).
fn flag_arg(_ctx: &NativeCallContext, value: &Dynamic, what: &str) -> Result<bool, Error> {
    if let Ok(b) = value.as_bool() {
        return Ok(b);
    }
    if let Ok(i) = value.as_int() {
        return Ok(i != 0);
    }
    Err(Error::new(
        ErrorKind::TypeError,
        format!(
            "{what} must be a bool (or an int), not {}",
            crate::error::type_name(value)
        ),
    ))
}

/// An address as Python gives it: `[host, port]` for IPv4, `[host, port, flowinfo,
/// scope_id]` for IPv6 (Python's tuples, as arrays), the path for a Unix socket.
fn address_value(address: Address) -> Dynamic {
    match address {
        Address::V4 { host, port } => {
            let pair: Array = vec![host.into(), Dynamic::from_int(port.into())];
            pair.into()
        }
        Address::V6 {
            host,
            port,
            flowinfo,
            scope_id,
        } => {
            let four: Array = vec![
                host.into(),
                Dynamic::from_int(port.into()),
                Dynamic::from_int(flowinfo.into()),
                Dynamic::from_int(scope_id.into()),
            ];
            four.into()
        }
        Address::Unix(path) => path.into(),
    }
}

/// Checks that `options` has only the keys in `known`.
fn check_keys(options: &Map, known: &[&str], what: &str) -> Result<(), Error> {
    if let Some(extra) = options.keys().find(|k| !known.contains(&k.as_str())) {
        let names: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        return Err(Error::value(format!(
            "{what}: unknown option `{extra}` (expected {})",
            names.join(", ")
        )));
    }
    Ok(())
}

/// `create_server`'s options map: `family`, `backlog`, `reuse_port`, `dualstack_ipv6`.
fn server_options(
    ctx: &NativeCallContext,
    options: &Map,
    what: &str,
) -> Result<ServerOptions, Error> {
    check_keys(
        options,
        &["family", "backlog", "reuse_port", "dualstack_ipv6"],
        what,
    )?;
    let mut parsed = ServerOptions::default();
    let int = |key: &str, value: &Dynamic| {
        value.as_int().map_err(|_| {
            Error::new(
                ErrorKind::TypeError,
                format!(
                    "{what}: `{key}` must be an int, not {}",
                    crate::error::type_name(value)
                ),
            )
        })
    };
    if let Some(family) = options.get("family") {
        parsed.family = Family::from_raw(int("family", family)?)?;
    }
    if let Some(backlog) = options.get("backlog").filter(|b| !b.is_unit()) {
        parsed.backlog = Some(int("backlog", backlog)?);
    }
    if let Some(flag) = options.get("reuse_port") {
        parsed.reuse_port = flag_arg(ctx, flag, &format!("{what}: `reuse_port`"))?;
    }
    if let Some(flag) = options.get("dualstack_ipv6") {
        parsed.dualstack_ipv6 = flag_arg(ctx, flag, &format!("{what}: `dualstack_ipv6`"))?;
    }
    Ok(parsed)
}

/// `create_connection`'s timeout and source address (`[host, port]`).
type ConnectionOptions = (Option<std::time::Duration>, Option<(String, INT)>);

/// `create_connection`'s third argument: a timeout, or a map `#{ timeout, source_address }`.
/// A missing timeout is the default timeout.
fn connection_options(
    ctx: &NativeCallContext,
    arg: &Dynamic,
    what: &str,
) -> Result<ConnectionOptions, Error> {
    let Some(options) = arg.read_lock::<Map>() else {
        return Ok((
            timeout_arg(ctx, arg, &format!("{what}: the timeout"))?,
            None,
        ));
    };
    check_keys(&options, &["timeout", "source_address"], what)?;
    let timeout = match options.get("timeout") {
        Some(t) => timeout_arg(ctx, t, &format!("{what}: the timeout"))?,
        None => super::default_timeout(),
    };
    let source = match options.get("source_address") {
        None => None,
        Some(v) if v.is_unit() => None,
        Some(v) => {
            let bad = || {
                Error::new(
                    ErrorKind::TypeError,
                    format!(
                        "{what}: `source_address` must be [host, port], not {}",
                        crate::error::type_name(v)
                    ),
                )
            };
            let pair = v.read_lock::<Array>().ok_or_else(bad)?;
            match pair.as_slice() {
                [host, port] if host.is_string() && port.is_int() => Some((
                    host.clone().into_string().map_err(|_| bad())?,
                    port.as_int().map_err(|_| bad())?,
                )),
                _ => return Err(bad()),
            }
        }
    };
    Ok((timeout, source))
}

/// The select entries of one list: sockets, Pipe ends, or descriptor numbers.
fn select_entries(
    _ctx: &NativeCallContext,
    list: &Array,
    want: Want,
    entries: &mut Vec<Entry>,
) -> Result<(), Error> {
    for item in list {
        let (fd, ready_now) = if let Some(socket) = item.read_lock::<Socket>() {
            (socket.fileno(), want == Want::Read && socket.has_buffered())
        } else if let Some(conn) = item.read_lock::<Connection>() {
            (conn.fileno(), false)
        } else if let Ok(n) = item.as_int() {
            let fd =
                i32::try_from(n).map_err(|_| Error::value(format!("select: no descriptor {n}")))?;
            (fd, false)
        } else {
            return Err(Error::new(
                ErrorKind::TypeError,
                format!(
                    "select: the lists hold sockets, Pipe ends or descriptors (ints), not {}",
                    crate::error::type_name(item)
                ),
            ));
        };
        entries.push(Entry {
            fd,
            want,
            ready_now,
        });
    }
    Ok(())
}

/// `wait(objects, timeout)`: the objects that are ready, as Python's
/// `multiprocessing.connection.wait`. A process is ready once it has ended (through its
/// sentinel), a Pipe end or Queue when a message (or end of input) is waiting, a socket when
/// it can be read, a descriptor number when it is readable.
fn wait_objects(objects: &Array, timeout: Option<std::time::Duration>) -> Result<Array, Error> {
    let mut entries = Vec::with_capacity(objects.len());
    for item in objects {
        let (fd, ready_now) = if let Some(socket) = item.read_lock::<Socket>() {
            (socket.fileno(), socket.has_buffered())
        } else if let Some(conn) = item.read_lock::<Connection>() {
            (conn.fileno(), false)
        } else if let Some(process) = item.read_lock::<crate::process::Process>() {
            (process.sentinel()?, false)
        } else if let Some(fd) = queue_fd(item) {
            (fd, false)
        } else if let Ok(n) = item.as_int() {
            let fd =
                i32::try_from(n).map_err(|_| Error::value(format!("wait: no descriptor {n}")))?;
            (fd, false)
        } else {
            return Err(Error::new(
                ErrorKind::TypeError,
                format!(
                    "wait: the list holds processes, Pipe ends, queues, sockets or descriptors \
                     (ints, such as p.sentinel), not {}",
                    crate::error::type_name(item)
                ),
            ));
        };
        if fd < 0 {
            return Err(Error::value(format!(
                "wait: {} is closed",
                crate::error::type_name(item)
            )));
        }
        entries.push(Entry {
            fd,
            want: Want::Read,
            ready_now,
        });
    }
    if entries.is_empty() && timeout.is_none() {
        return Err(Error::value(
            "wait: nothing to wait for and no timeout (this would wait forever; use sleep)",
        ));
    }
    let ready = super::select::select(&entries, timeout)?;
    Ok(objects
        .iter()
        .zip(ready)
        .filter(|(_, ready)| *ready)
        .map(|(item, _)| item.clone())
        .collect())
}

/// The read descriptor of a Queue, JoinableQueue or SimpleQueue.
fn queue_fd(item: &Dynamic) -> Option<i32> {
    use crate::ipc::queue::{JoinableQueue, Queue, SimpleQueue};
    let closed = Some(-1);
    if let Some(q) = item.read_lock::<Queue>() {
        return q.reader_fd().or(closed);
    }
    if let Some(q) = item.read_lock::<JoinableQueue>() {
        return q.0.reader_fd().or(closed);
    }
    if let Some(q) = item.read_lock::<SimpleQueue>() {
        return q.0.reader_fd().or(closed);
    }
    None
}

fn select_lists(
    ctx: &NativeCallContext,
    lists: [&Array; 3],
    timeout: Option<std::time::Duration>,
) -> Result<Array, Error> {
    let mut entries = Vec::new();
    for (list, want) in lists.iter().zip([Want::Read, Want::Write, Want::Except]) {
        select_entries(ctx, list, want, &mut entries)?;
    }
    let ready = super::select::select(&entries, timeout)?;
    let mut flags = ready.into_iter();
    let result: Array = lists
        .iter()
        .map(|list| {
            let chosen: Array = list
                .iter()
                .filter(|_| flags.next().unwrap_or(false))
                .cloned()
                .collect();
            Dynamic::from_array(chosen)
        })
        .collect();
    Ok(result)
}

/// What `s.lines()` returns: iterate it with `for` to read the socket line by line.
#[derive(Clone)]
pub struct SocketLines(Socket);

/// The running side of a `for` loop over [`SocketLines`].
pub struct LinesIter {
    socket: Socket,
    done: bool,
}

impl IntoIterator for SocketLines {
    type Item = RhaiResult<String>;
    type IntoIter = LinesIter;

    fn into_iter(self) -> LinesIter {
        LinesIter {
            socket: self.0,
            done: false,
        }
    }
}

impl Iterator for LinesIter {
    type Item = RhaiResult<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.socket.readline_text(None) {
            Ok(line) if line.is_empty() => {
                self.done = true;
                None
            }
            Ok(line) => Some(Ok(line)),
            Err(e) => {
                self.done = true;
                Some(Err(e.into()))
            }
        }
    }
}

fn shutdown_how(how: INT) -> Result<Shutdown, Error> {
    match how {
        h if h == libc::SHUT_RD as INT => Ok(Shutdown::Read),
        h if h == libc::SHUT_WR as INT => Ok(Shutdown::Write),
        h if h == libc::SHUT_RDWR as INT => Ok(Shutdown::Both),
        _ => Err(Error::value(format!(
            "shutdown({how}): expected SHUT_RD, SHUT_WR or SHUT_RDWR"
        ))),
    }
}

fn check_encoding(encoding: &str) -> Result<(), Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(()),
        _ => Err(Error::value(format!(
            "unknown encoding `{encoding}` (only UTF-8 is supported)"
        ))),
    }
}

fn option_value(value: Dynamic) -> Result<INT, Error> {
    if let Ok(b) = value.as_bool() {
        return Ok(INT::from(b));
    }
    value.as_int().map_err(|_| {
        Error::new(
            ErrorKind::TypeError,
            format!(
                "setsockopt: value must be an integer, not {}",
                crate::error::type_name(&value)
            ),
        )
    })
}

fn port_or_unit(port: Option<u16>) -> Dynamic {
    port.map_or(Dynamic::UNIT, |p| Dynamic::from_int(p.into()))
}

fn text_or_unit(text: Option<String>) -> Dynamic {
    text.map_or(Dynamic::UNIT, Dynamic::from)
}

#[export_module]
mod net_functions {
    use super::*;

    /// A socket: made by `socket(...)` or `accept()`, closed by `close()` or when the last
    /// variable holding it goes away.
    pub type Socket = super::Socket;

    /// A TCP socket over IPv4: `socket(AF_INET, SOCK_STREAM)`.
    ///
    /// ```rhai
    /// let s = socket();
    /// s.bind("127.0.0.1", 0);
    /// print(s.local_port > 0);   // true
    /// ```
    #[rhai_fn(name = "socket", return_raw, volatile)]
    pub fn socket0() -> RhaiResult<Socket> {
        Ok(Socket::new(Family::Inet, Kind::Stream)?)
    }

    /// A stream socket of `family` (`AF_INET`, `AF_INET6` or `AF_UNIX`).
    #[rhai_fn(name = "socket", return_raw, volatile)]
    pub fn socket1(family: INT) -> RhaiResult<Socket> {
        Ok(Socket::new(Family::from_raw(family)?, Kind::Stream)?)
    }

    /// A socket of `family` (`AF_INET`, `AF_INET6`, `AF_UNIX`) and `sock_type` (`SOCK_STREAM`,
    /// `SOCK_DGRAM`).
    ///
    /// ```rhai
    /// let udp = socket(AF_INET, SOCK_DGRAM);
    /// ```
    #[rhai_fn(name = "socket", return_raw, volatile)]
    pub fn socket2(family: INT, sock_type: INT) -> RhaiResult<Socket> {
        Ok(Socket::new(
            Family::from_raw(family)?,
            Kind::from_raw(sock_type)?,
        )?)
    }

    /// Sets an integer option: `s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)`,
    /// `s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)`; `value` may be a boolean.
    ///
    /// ```rhai
    /// let s = socket();
    /// s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn setsockopt(s: &mut Socket, level: INT, option: INT, value: Dynamic) -> RhaiResult<()> {
        Ok(s.setsockopt(level, option, option_value(value)?)?)
    }

    /// Binds to `host` and `port`; port 0 lets the OS choose (read it from `local_port`),
    /// host `""` means every address. Address in use: `OSError` with `errno` 98.
    ///
    /// ```rhai
    /// let s = socket();
    /// s.bind("127.0.0.1", 0);
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn bind(s: &mut Socket, host: ImmutableString, port: INT) -> RhaiResult<()> {
        Ok(s.bind(&host, port)?)
    }

    /// Binds a Unix socket to `path`. The path is removed when the process that bound it
    /// closes the socket, so a rerun can bind again.
    #[rhai_fn(name = "bind", return_raw, volatile)]
    pub fn bind_path(s: &mut Socket, path: ImmutableString) -> RhaiResult<()> {
        Ok(s.bind_path(&path)?)
    }

    /// Listens for connections, with a backlog of 128.
    #[rhai_fn(return_raw, volatile)]
    pub fn listen(s: &mut Socket) -> RhaiResult<()> {
        Ok(s.listen(super::super::DEFAULT_BACKLOG.into())?)
    }

    /// Listens for connections, with room for `backlog` of them waiting to be accepted.
    #[rhai_fn(name = "listen", return_raw, volatile)]
    pub fn listen_backlog(s: &mut Socket, backlog: INT) -> RhaiResult<()> {
        Ok(s.listen(backlog)?)
    }

    /// Waits for a connection and returns the connected socket; its `peer_addr` is the
    /// client's `"host:port"`.
    ///
    /// ```rhai
    /// let server = socket();
    /// server.bind("127.0.0.1", 0);
    /// server.listen();
    /// let client = socket();
    /// client.connect("127.0.0.1", server.local_port);
    /// let conn = server.accept();
    /// print(conn.peer_addr == client.local_addr);   // true
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn accept(s: &mut Socket) -> RhaiResult<Socket> {
        Ok(s.accept()?)
    }

    /// Connects to `host` and `port`. Nobody listening: `ConnectionRefusedError` (errno 111).
    #[rhai_fn(return_raw, volatile)]
    pub fn connect(s: &mut Socket, host: ImmutableString, port: INT) -> RhaiResult<()> {
        Ok(s.connect(&host, port)?)
    }

    /// Connects a Unix socket to `path`. No such path: `FileNotFoundError`.
    #[rhai_fn(name = "connect", return_raw, volatile)]
    pub fn connect_path(s: &mut Socket, path: ImmutableString) -> RhaiResult<()> {
        Ok(s.connect_path(&path)?)
    }

    /// Receives at most `n` bytes as a blob; an empty blob means the peer closed its side.
    /// A peer that reset the connection: `ConnectionResetError`.
    ///
    /// ```rhai
    /// let server = socket();
    /// server.bind("127.0.0.1", 0);
    /// server.listen();
    /// let client = socket();
    /// client.connect("127.0.0.1", server.local_port);
    /// let conn = server.accept();
    /// client.sendall("hello");
    /// client.close();
    /// print(conn.recv(1024).decode());    // hello
    /// print(conn.recv(1024).is_empty());  // true: the client closed
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn recv(s: &mut Socket, n: INT) -> RhaiResult<Blob> {
        Ok(s.recv(n)?)
    }

    /// Sends `data` (a blob or a string) and returns how many bytes the socket took, which
    /// may be fewer than all (`sendall` sends everything). A closed peer: `BrokenPipeError`.
    #[rhai_fn(return_raw, volatile)]
    pub fn send(ctx: NativeCallContext, s: &mut Socket, data: Dynamic) -> RhaiResult<INT> {
        Ok(with_bytes(&ctx, &data, "send", |bytes| s.send(bytes))? as INT)
    }

    /// Sends all of `data` (a blob or a string). With a timeout, the whole send must end
    /// within it; on a non-blocking socket, a full buffer is a `BlockingIOError` (part of
    /// the data may have gone). Ctrl-C or SIGTERM stop it even while the peer reads nothing.
    #[rhai_fn(return_raw, volatile)]
    pub fn sendall(ctx: NativeCallContext, s: &mut Socket, data: Dynamic) -> RhaiResult<()> {
        Ok(with_bytes(&ctx, &data, "sendall", |bytes| {
            s.sendall(bytes)
        })?)
    }

    /// Receives one datagram of at most `n` bytes: `#{ data, addr, host, port }`, where
    /// `addr` is the sender's `"host:port"`.
    ///
    /// ```rhai
    /// let udp = socket(AF_INET, SOCK_DGRAM);
    /// udp.bind("127.0.0.1", 0);
    /// udp.sendto("ping", "127.0.0.1", udp.local_port);
    /// let got = udp.recvfrom(1024);
    /// print(got.data.decode());          // ping
    /// print(got.port == udp.local_port); // true
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn recvfrom(s: &mut Socket, n: INT) -> RhaiResult<Map> {
        let got = s.recvfrom(n)?;
        let mut map = Map::new();
        map.insert("data".into(), Dynamic::from_blob(got.data));
        map.insert("addr".into(), got.addr.into());
        map.insert("host".into(), text_or_unit(got.host));
        map.insert("port".into(), port_or_unit(got.port));
        Ok(map)
    }

    /// Sends a datagram (a blob or a string) to `host` and `port`; returns the bytes sent.
    #[rhai_fn(return_raw, volatile)]
    pub fn sendto(
        ctx: NativeCallContext,
        s: &mut Socket,
        data: Dynamic,
        host: ImmutableString,
        port: INT,
    ) -> RhaiResult<INT> {
        Ok(with_bytes(&ctx, &data, "sendto", |bytes| s.sendto(bytes, &host, port))? as INT)
    }

    /// Sets how long each later call may wait, in seconds (an int or a float); `()` makes
    /// the socket blocking again. A call that waits longer: `TimeoutError`. `0` makes it
    /// non-blocking: a call that would wait raises `BlockingIOError` (errno 11) at once.
    ///
    /// ```rhai
    /// let s = socket();
    /// s.settimeout(2.5);
    /// print(s.gettimeout());   // 2.5
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn settimeout(ctx: NativeCallContext, s: &mut Socket, secs: Dynamic) -> RhaiResult<()> {
        let timeout = timeout_arg(&ctx, &secs, "the socket timeout")?;
        Ok(s.settimeout(timeout)?)
    }

    /// `setblocking(false)` makes the socket non-blocking (`settimeout(0)`): a call that
    /// would wait raises `BlockingIOError` (errno 11) instead. `setblocking(true)` makes it
    /// blocking again (`settimeout(())`). An int works as in Python: `setblocking(0)`.
    ///
    /// ```rhai
    /// let server = socket();
    /// server.bind("127.0.0.1", 0);
    /// server.listen();
    /// server.setblocking(false);
    /// print(server.getblocking());   // false
    /// try { server.accept(); } catch (e) { print(`${e.kind} ${e.errno}`); }   // BlockingIOError 11
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn setblocking(ctx: NativeCallContext, s: &mut Socket, flag: Dynamic) -> RhaiResult<()> {
        Ok(s.setblocking(flag_arg(&ctx, &flag, "setblocking")?)?)
    }

    /// False only for a non-blocking socket (timeout 0); a socket with a timeout above 0
    /// counts as blocking, as in Python.
    #[rhai_fn(pure, volatile)]
    pub fn getblocking(s: &mut Socket) -> bool {
        s.getblocking()
    }

    /// The timeout in seconds, `()` for a blocking socket.
    #[rhai_fn(pure, volatile)]
    pub fn gettimeout(s: &mut Socket) -> Dynamic {
        s.timeout()
            .map_or(Dynamic::UNIT, |t| Dynamic::from_float(t.as_secs_f64()))
    }

    /// Shuts the connection down both ways (for every process that shares it): the peer
    /// sees the end of the stream.
    #[rhai_fn(return_raw, volatile)]
    pub fn shutdown(s: &mut Socket) -> RhaiResult<()> {
        Ok(s.shutdown(Shutdown::Both)?)
    }

    /// Shuts down one way: `SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`.
    #[rhai_fn(name = "shutdown", return_raw, volatile)]
    pub fn shutdown_how(s: &mut Socket, how: INT) -> RhaiResult<()> {
        Ok(s.shutdown(super::shutdown_how(how)?)?)
    }

    /// Closes this process's copy of the socket; closing twice is fine. Other processes
    /// that hold the connection keep it.
    #[rhai_fn(volatile)]
    pub fn close(s: &mut Socket) {
        s.close();
    }

    /// The descriptor number, -1 once closed.
    #[rhai_fn(pure, volatile)]
    pub fn fileno(s: &mut Socket) -> INT {
        s.fileno().into()
    }

    /// A new socket on a duplicate of the descriptor (close-on-exec) with the same
    /// timeout: closing one leaves the other open. Both read and write the same
    /// connection.
    ///
    /// ```rhai
    /// let pair = socketpair();
    /// let a = pair[0];
    /// let b = pair[1];
    /// let copy = a.dup();
    /// a.close();
    /// copy.sendall("still open");
    /// print(b.recv(100).decode());   // still open
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn dup(s: &mut Socket) -> RhaiResult<Socket> {
        Ok(s.dup()?)
    }

    /// Reads an integer option: `s.getsockopt(SOL_SOCKET, SO_REUSEADDR)` → 0 or 1,
    /// `s.getsockopt(SOL_SOCKET, SO_TYPE)` → `SOCK_STREAM`, `s.getsockopt(SOL_SOCKET,
    /// SO_ERROR)` → the outcome of a non-blocking `connect` (0: connected).
    ///
    /// ```rhai
    /// let s = socket();
    /// print(s.getsockopt(SOL_SOCKET, SO_REUSEADDR));   // 0
    /// s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    /// print(s.getsockopt(SOL_SOCKET, SO_REUSEADDR));   // 1
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn getsockopt(s: &mut Socket, level: INT, option: INT) -> RhaiResult<INT> {
        Ok(s.getsockopt(level, option)?)
    }

    /// The local address as Python gives it: `[host, port]` for IPv4 (Python's tuple, as
    /// an array), `[host, port, flowinfo, scope_id]` for IPv6, the path for a Unix socket
    /// (`""` when unbound). A closed socket: `OSError` errno 9.
    ///
    /// ```rhai
    /// let s = socket();
    /// s.bind("127.0.0.1", 0);
    /// let name = s.getsockname();
    /// print(name[0]);                    // 127.0.0.1
    /// print(name[1] == s.local_port);    // true
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn getsockname(s: &mut Socket) -> RhaiResult<Dynamic> {
        Ok(address_value(s.getsockname()?))
    }

    /// The peer's address, in the same form as `getsockname()`. Not connected: `OSError`
    /// errno 107.
    ///
    /// ```rhai
    /// let server = create_server("127.0.0.1", 0);
    /// let client = create_connection("127.0.0.1", server.getsockname()[1]);
    /// print(client.getpeername() == server.getsockname());   // true
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn getpeername(s: &mut Socket) -> RhaiResult<Dynamic> {
        Ok(address_value(s.getpeername()?))
    }

    /// The address family: `AF_INET`, `AF_INET6` or `AF_UNIX`.
    ///
    /// ```rhai
    /// print(socket(AF_INET6).family == AF_INET6);   // true
    /// ```
    #[rhai_fn(get = "family", pure)]
    pub fn family(s: &mut Socket) -> INT {
        match s.family() {
            Family::Inet => super::super::AF_INET,
            Family::Inet6 => super::super::AF_INET6,
            Family::Unix => super::super::AF_UNIX,
        }
    }

    /// The socket type: `SOCK_STREAM` or `SOCK_DGRAM`.
    ///
    /// ```rhai
    /// print(socket(AF_INET, SOCK_DGRAM).type == SOCK_DGRAM);   // true
    /// ```
    #[rhai_fn(get = "type", pure)]
    pub fn sock_type(s: &mut Socket) -> INT {
        match s.kind() {
            Kind::Stream => super::super::SOCK_STREAM,
            Kind::Datagram => super::super::SOCK_DGRAM,
        }
    }

    /// The protocol number: always 0 (the family's default), as Python reports a socket
    /// made without one.
    #[rhai_fn(get = "proto", pure)]
    pub fn proto(_s: &mut Socket) -> INT {
        0
    }

    /// One line from the socket as a string, its `"\n"` included (Python's
    /// `makefile().readline()`); at the end of the stream, what is left without a newline,
    /// then `""`. Bytes read past the line stay with the socket for the next `readline` or
    /// `recv`. The socket's timeout covers the whole line. A line that is not UTF-8 is a
    /// `ValueError`, and its bytes stay unread.
    ///
    /// ```rhai
    /// let pair = socketpair();
    /// let a = pair[0];
    /// let b = pair[1];
    /// a.sendall("first\nsecond\nrest");
    /// a.shutdown(SHUT_WR);
    /// print(b.readline() == "first\n");   // true: the newline stays
    /// print(b.recv(3).decode());          // sec
    /// print(b.readline() == "ond\n");     // true
    /// print(b.readline());                // rest
    /// print(b.readline() == "");          // true: the end of the stream
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn readline(s: &mut Socket) -> RhaiResult<String> {
        Ok(s.readline_text(None)?)
    }

    /// One line of at most `limit` characters (Python's `readline(size)`): a longer line
    /// comes in pieces. A guard against a peer that never sends a newline.
    #[rhai_fn(name = "readline", return_raw, volatile)]
    pub fn readline_limit(s: &mut Socket, limit: INT) -> RhaiResult<String> {
        let limit = usize::try_from(limit).map_err(|_| {
            Error::value(format!("readline({limit}): the limit cannot be negative"))
        })?;
        Ok(s.readline_text(Some(limit))?)
    }

    /// The lines of the socket, for a `for` loop, until the end of the stream; each line
    /// keeps its `"\n"` (as iterating Python's `makefile()` does). An error (a timeout, a
    /// reset) ends the loop with that error.
    ///
    /// ```rhai
    /// let pair = socketpair();
    /// let a = pair[0];
    /// let b = pair[1];
    /// a.sendall("one\ntwo\n");
    /// a.close();
    /// for line in b.lines() {
    ///     line.trim();    // drop the newline (Rhai's trim works in place)
    ///     print(line);    // one, then two
    /// }
    /// ```
    #[rhai_fn(pure)]
    pub fn lines(s: &mut Socket) -> SocketLines {
        super::SocketLines(s.clone())
    }

    /// What `s.lines()` returns: use it in a `for` loop.
    pub type SocketLines = super::SocketLines;

    /// `<lines of socket fd=3>`.
    #[rhai_fn(name = "to_string", pure)]
    pub fn lines_to_string(l: &mut SocketLines) -> String {
        format!("<lines of socket fd={}>", l.0.fileno())
    }

    /// Same as `to_string`.
    #[rhai_fn(name = "to_debug", pure)]
    pub fn lines_to_debug(l: &mut SocketLines) -> String {
        lines_to_string(l)
    }

    /// Whether two handles are the same socket (`let b = a;` gives one socket two names;
    /// `dup()` makes another socket). So `select`'s result can be searched with `==` and
    /// `contains`.
    ///
    /// ```rhai
    /// let a = socket();
    /// let b = a;
    /// print(a == b);           // true
    /// print(a == a.dup());     // false
    /// print([a].contains(b));  // true
    /// ```
    #[rhai_fn(name = "==", pure)]
    pub fn socket_eq(a: &mut Socket, b: Socket) -> bool {
        a.same_as(&b)
    }

    /// Whether two handles are different sockets.
    #[rhai_fn(name = "!=", pure)]
    pub fn socket_ne(a: &mut Socket, b: Socket) -> bool {
        !a.same_as(&b)
    }

    /// Two connected Unix stream sockets, `[a, b]` (Python's `socket.socketpair()`, its
    /// tuple as an array): what one sends, the other receives.
    ///
    /// ```rhai
    /// let pair = socketpair();
    /// let a = pair[0];
    /// let b = pair[1];
    /// a.sendall("ping");
    /// print(b.recv(10).decode());   // ping
    /// ```
    #[rhai_fn(name = "socketpair", return_raw, volatile)]
    pub fn socketpair0() -> RhaiResult<Array> {
        socketpair2(super::super::AF_UNIX, super::super::SOCK_STREAM)
    }

    /// A connected pair of `family` (only `AF_UNIX` pairs on Linux) and `sock_type`
    /// (`SOCK_STREAM` or `SOCK_DGRAM`).
    #[rhai_fn(name = "socketpair", return_raw, volatile)]
    pub fn socketpair2(family: INT, sock_type: INT) -> RhaiResult<Array> {
        let (a, b) =
            super::super::socketpair(Family::from_raw(family)?, Kind::from_raw(sock_type)?)?;
        Ok(vec![Dynamic::from(a), Dynamic::from(b)])
    }

    /// Connects to `host` and `port` over TCP (Python's `socket.create_connection`): tries
    /// each address a name resolves to (IPv4 or IPv6), and fails with the last error. The
    /// socket has the default timeout (`getdefaulttimeout()`), which also bounds the
    /// connect.
    ///
    /// ```rhai
    /// let server = create_server("127.0.0.1", 0);
    /// let client = create_connection("localhost", server.getsockname()[1]);
    /// client.sendall("hi");
    /// print(server.accept().recv(10).decode());   // hi
    /// ```
    #[rhai_fn(name = "create_connection", return_raw, volatile)]
    pub fn create_connection2(host: ImmutableString, port: INT) -> RhaiResult<Socket> {
        Ok(super::super::create_connection(
            &host,
            port,
            super::super::default_timeout(),
            None,
        )?)
    }

    /// `create_connection` with a timeout in seconds for the connect and every later call
    /// (`()`: blocking), or with a map `#{ timeout, source_address: [host, port] }` (binds
    /// to `source_address` before connecting).
    ///
    /// ```rhai
    /// let server = create_server("127.0.0.1", 0);
    /// let port = server.getsockname()[1];
    /// let client = create_connection("127.0.0.1", port, 5);
    /// print(client.gettimeout());   // 5.0
    /// let bound = create_connection("127.0.0.1", port, #{ source_address: ["127.0.0.1", 0] });
    /// print(bound.getsockname()[0]);   // 127.0.0.1
    /// ```
    #[rhai_fn(name = "create_connection", return_raw, volatile)]
    pub fn create_connection3(
        ctx: NativeCallContext,
        host: ImmutableString,
        port: INT,
        options: Dynamic,
    ) -> RhaiResult<Socket> {
        let what = format!("create_connection to `{host}:{port}`");
        let (timeout, source) = connection_options(&ctx, &options, &what)?;
        let source = source.as_ref().map(|(h, p)| (h.as_str(), *p));
        Ok(super::super::create_connection(
            &host, port, timeout, source,
        )?)
    }

    /// A TCP server socket bound to `host` and `port` and listening (Python's
    /// `socket.create_server`), with `SO_REUSEADDR` set so that a restarted server can bind
    /// at once. Port 0 lets the OS choose; host `""` means every address.
    ///
    /// ```rhai
    /// let server = create_server("127.0.0.1", 0);
    /// print(server.getsockname()[1] > 0);                    // true
    /// print(server.getsockopt(SOL_SOCKET, SO_ACCEPTCONN));   // 1
    /// ```
    #[rhai_fn(name = "create_server", return_raw, volatile)]
    pub fn create_server2(host: ImmutableString, port: INT) -> RhaiResult<Socket> {
        Ok(super::super::create_server(
            &host,
            port,
            &ServerOptions::default(),
        )?)
    }

    /// `create_server` with options: `#{ family: AF_INET6, backlog: 16, reuse_port: true,
    /// dualstack_ipv6: true }` (each optional). An IPv6 server is IPv6-only unless
    /// `dualstack_ipv6` is set.
    ///
    /// ```rhai
    /// let server = create_server("::1", 0, #{ family: AF_INET6, reuse_port: true });
    /// print(server.family == AF_INET6);                      // true
    /// print(server.getsockopt(SOL_SOCKET, SO_REUSEPORT));    // 1
    /// ```
    #[rhai_fn(name = "create_server", return_raw, volatile)]
    pub fn create_server3(
        ctx: NativeCallContext,
        host: ImmutableString,
        port: INT,
        options: Map,
    ) -> RhaiResult<Socket> {
        let what = format!("create_server on `{host}:{port}`");
        let options = server_options(&ctx, &options, &what)?;
        Ok(super::super::create_server(&host, port, &options)?)
    }

    /// The timeout new sockets start with, in seconds, or `()` for blocking (the start).
    ///
    /// ```rhai
    /// print(getdefaulttimeout() == ());   // true: blocking
    /// setdefaulttimeout(10);
    /// print(socket().gettimeout());       // 10.0
    /// setdefaulttimeout(());
    /// ```
    #[rhai_fn(volatile)]
    pub fn getdefaulttimeout() -> Dynamic {
        super::super::default_timeout()
            .map_or(Dynamic::UNIT, |t| Dynamic::from_float(t.as_secs_f64()))
    }

    /// Sets the timeout that sockets made from now on start with (`socket()`, `accept()`,
    /// `socketpair()`, `create_connection` without a timeout), in seconds; `()` for
    /// blocking. Existing sockets keep theirs. It holds in this process and in children it
    /// starts afterwards.
    #[rhai_fn(return_raw, volatile)]
    pub fn setdefaulttimeout(ctx: NativeCallContext, secs: Dynamic) -> RhaiResult<()> {
        super::super::set_default_timeout(timeout_arg(&ctx, &secs, "the default timeout")?);
        Ok(())
    }

    /// Waits until some of the sockets or Pipe ends (or descriptor numbers) in `rlist` can
    /// be read, in `wlist` written, or in `xlist` have out-of-band data, and returns those
    /// as `[readable, writable, exceptional]` (Python's `select.select`; its tuple as an
    /// array). Waits as long as it takes; see `select(rlist, wlist, xlist, timeout)`.
    #[rhai_fn(name = "select", return_raw, volatile)]
    pub fn select3(
        ctx: NativeCallContext,
        rlist: Array,
        wlist: Array,
        xlist: Array,
    ) -> RhaiResult<Array> {
        Ok(select_lists(&ctx, [&rlist, &wlist, &xlist], None)?)
    }

    /// Waits until at least one of `objects` is ready and returns the ready ones, as Python's
    /// `multiprocessing.connection.wait`: a process (or its `sentinel`) once it has ended, a
    /// Pipe end or a Queue with a message (or end of input) waiting, a socket that can be
    /// read, a readable descriptor number. Children are reaped and Ctrl-C ends the wait.
    ///
    /// ```rhai
    /// let p = spawn sleep(0.2);
    /// let q = Queue();
    /// let ready = wait([p, q]);
    /// print(ready.len());        // 1
    /// print(ready[0].exitcode);  // 0: it is p, which ended
    /// ```
    #[rhai_fn(name = "wait", return_raw, volatile)]
    pub fn wait_all(objects: Array) -> RhaiResult<Array> {
        Ok(wait_objects(&objects, None)?)
    }

    /// `wait` for at most `timeout` seconds (`()`: no limit; 0 or less: just look); then the
    /// result is empty.
    ///
    /// ```rhai
    /// let pair = Pipe();
    /// print(wait([pair[1]], 0).len());   // 0: nothing sent
    /// pair[0].send("hi");
    /// print(wait([pair[1]], 5).len());   // 1
    /// ```
    #[rhai_fn(name = "wait", return_raw, volatile)]
    pub fn wait_timeout(
        ctx: NativeCallContext,
        objects: Array,
        timeout: Dynamic,
    ) -> RhaiResult<Array> {
        let timeout = match timeout
            .as_float()
            .ok()
            .or_else(|| timeout.as_int().ok().map(|i| i as f64))
        {
            Some(t) if t < 0.0 => Some(std::time::Duration::ZERO),
            _ => timeout_arg(&ctx, &timeout, "the wait timeout")?,
        };
        Ok(wait_objects(&objects, timeout)?)
    }

    /// `select` waiting at most `timeout` seconds (`()`: no limit; `0`: just look); then
    /// the three lists are empty. A socket holding bytes that `readline` read ahead counts
    /// as readable. Ctrl-C or SIGTERM end the wait.
    ///
    /// ```rhai
    /// let pair = socketpair();
    /// let a = pair[0];
    /// let b = pair[1];
    /// let ready = select([b], [a], [], 0);
    /// print(ready[0].len());    // 0: nothing sent yet
    /// print(ready[1][0] == a);  // true: a can send
    /// a.sendall("x");
    /// let readable = select([b], [], [], 5)[0];
    /// print(readable[0] == b);  // true
    /// ```
    #[rhai_fn(name = "select", return_raw, volatile)]
    pub fn select4(
        ctx: NativeCallContext,
        rlist: Array,
        wlist: Array,
        xlist: Array,
        timeout: Dynamic,
    ) -> RhaiResult<Array> {
        let timeout = timeout_arg(&ctx, &timeout, "the select timeout")?;
        Ok(select_lists(&ctx, [&rlist, &wlist, &xlist], timeout)?)
    }

    /// The local address, `"host:port"` (a path for Unix sockets); `()` once closed.
    #[rhai_fn(get = "local_addr", pure, volatile)]
    pub fn local_addr(s: &mut Socket) -> Dynamic {
        text_or_unit(s.local_addr())
    }

    /// The local port (an int), the one the OS chose after `bind(host, 0)`; `()` for Unix
    /// sockets and once closed.
    #[rhai_fn(get = "local_port", pure, volatile)]
    pub fn local_port(s: &mut Socket) -> Dynamic {
        port_or_unit(s.local_port())
    }

    /// The peer's address, `"host:port"`; `()` when not connected.
    #[rhai_fn(get = "peer_addr", pure, volatile)]
    pub fn peer_addr(s: &mut Socket) -> Dynamic {
        text_or_unit(s.peer_addr())
    }

    /// `<socket fd=3 family=AF_INET type=SOCK_STREAM laddr=127.0.0.1:8081>`.
    #[rhai_fn(name = "to_string", pure)]
    pub fn to_string(s: &mut Socket) -> String {
        s.to_string()
    }

    /// Same as `to_string`.
    #[rhai_fn(name = "to_debug", pure)]
    pub fn to_debug(s: &mut Socket) -> String {
        s.to_string()
    }

    /// The text in a blob of UTF-8; invalid UTF-8 is a `ValueError`.
    ///
    /// ```rhai
    /// print("hi".encode().decode());   // hi
    /// ```
    #[rhai_fn(name = "decode", return_raw, pure)]
    pub fn decode(b: &mut Blob) -> RhaiResult<String> {
        String::from_utf8(b.clone())
            .map_err(|e| Error::value(format!("cannot decode as UTF-8: {e}")).into())
    }

    /// `decode` with an explicit encoding; only `"utf-8"` is supported.
    #[rhai_fn(name = "decode", return_raw, pure)]
    pub fn decode_with(b: &mut Blob, encoding: &str) -> RhaiResult<String> {
        check_encoding(encoding)?;
        decode(b)
    }

    /// The UTF-8 bytes of a string, as a blob.
    #[rhai_fn(name = "encode", pure)]
    pub fn encode(s: &mut ImmutableString) -> Blob {
        s.as_bytes().to_vec()
    }

    /// `encode` with an explicit encoding; only `"utf-8"` is supported.
    #[rhai_fn(name = "encode", return_raw, pure)]
    pub fn encode_with(s: &mut ImmutableString, encoding: &str) -> RhaiResult<Blob> {
        check_encoding(encoding)?;
        Ok(encode(s))
    }

    /// A copy with ASCII letters upper-cased (other bytes unchanged), as Python's
    /// `bytes.upper()`.
    #[rhai_fn(name = "upper", pure)]
    pub fn blob_upper(b: &mut Blob) -> Blob {
        b.to_ascii_uppercase()
    }

    /// A copy with ASCII letters lower-cased.
    #[rhai_fn(name = "lower", pure)]
    pub fn blob_lower(b: &mut Blob) -> Blob {
        b.to_ascii_lowercase()
    }

    /// The string upper-cased (same as `to_upper`).
    #[rhai_fn(name = "upper", pure)]
    pub fn string_upper(s: &mut ImmutableString) -> String {
        s.to_uppercase()
    }

    /// The string lower-cased (same as `to_lower`).
    #[rhai_fn(name = "lower", pure)]
    pub fn string_lower(s: &mut ImmutableString) -> String {
        s.to_lowercase()
    }

    /// Reads one line from standard input, without its newline; `()` at the end of input.
    #[rhai_fn(name = "input", return_raw, volatile)]
    pub fn input0() -> RhaiResult<Dynamic> {
        input("")
    }

    /// Writes `prompt` to standard output (no newline) and reads one line from standard
    /// input without its newline; `()` at the end of input.
    ///
    /// At a terminal the line can be edited as in Python (arrows, Home/End, Backspace, Up
    /// for earlier lines of this run); Ctrl-D gives `()` and Ctrl-C raises a catchable
    /// `KeyboardInterrupt` (uncaught, the script ends with 130). From a pipe or a file it
    /// reads exactly one line and no more.
    ///
    /// ```rhai
    /// loop {
    ///     let msg = input("请输入:");
    ///     if msg == () { break; }
    ///     print(msg.upper());
    /// }
    /// ```
    #[rhai_fn(name = "input", return_raw, volatile)]
    pub fn input(prompt: &str) -> RhaiResult<Dynamic> {
        if crate::readline::interactive() {
            return Ok(crate::readline::input(prompt)?);
        }
        let _ = output::write_all(Stream::Stdout, prompt.as_bytes());
        Ok(read_line())
    }
}

thread_local! {
    /// Standard input read ahead of the last line `input` returned, and the process it was
    /// read in: a forked child must not see its parent's read-ahead (its stdin is /dev/null).
    static STDIN_AHEAD: std::cell::RefCell<(i32, Vec<u8>)> = const { std::cell::RefCell::new((0, Vec::new())) };
}

/// One line from standard input without its newline; `()` at the end of input (or on a
/// read error). Reads in chunks, retrying reads interrupted by a signal.
fn read_line() -> Dynamic {
    let me = crate::process::my_pid().as_raw();
    STDIN_AHEAD.with(|ahead| {
        let mut ahead = ahead.borrow_mut();
        if ahead.0 != me {
            *ahead = (me, Vec::new());
        }
        let buf = &mut ahead.1;
        let mut searched = 0;
        loop {
            if let Some(i) = buf[searched..].iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = buf.drain(..=searched + i).collect();
                line.pop();
                return String::from_utf8_lossy(&line).into_owned().into();
            }
            searched = buf.len();
            let mut chunk = [0u8; 4096];
            // SAFETY: descriptor 0 stays open for the life of the process.
            let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
            match nix::unistd::read(stdin, &mut chunk) {
                // Ctrl-C or SIGTERM: give up the line; the script stops at its next step.
                Err(nix::errno::Errno::EINTR) if crate::signal::pending().is_some() => {
                    return Dynamic::UNIT
                }
                Err(nix::errno::Errno::EINTR) => {}
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                // The end of input (or an unreadable stdin): the last line has no newline.
                _ if buf.is_empty() => return Dynamic::UNIT,
                _ => {
                    let line = std::mem::take(buf);
                    return String::from_utf8_lossy(&line).into_owned().into();
                }
            }
        }
    })
}
