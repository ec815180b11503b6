//! The Rhai surface of sockets: `socket`, `bind`, `accept`, `recv`, `send` ..., the `AF_*`
//! constants, the bytes helpers (`decode`, `encode`, `upper`) and `input`.
//!
//! Glue only: converts script values to [`Socket`] calls and errors to catchable maps.

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Blob, Dynamic, EvalAltResult, ImmutableString, Map, INT};

use super::{Family, Kind, Shutdown, Socket};
use crate::error::{Error, ErrorKind};
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
    ("IPPROTO_TCP", libc::IPPROTO_TCP as i64),
    ("TCP_NODELAY", libc::TCP_NODELAY as i64),
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
        for (name, value) in CONSTANTS {
            lib.set_var(*name, *value as INT);
        }
    }
}

/// Calls `f` with the bytes of a blob or a string (its UTF-8).
fn with_bytes<T>(
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
    value.as_int().map_err(|t| {
        Error::new(
            ErrorKind::TypeError,
            format!("setsockopt: value must be an integer, not {t}"),
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
    pub fn send(s: &mut Socket, data: Dynamic) -> RhaiResult<INT> {
        Ok(with_bytes(&data, "send", |bytes| s.send(bytes))? as INT)
    }

    /// Sends all of `data` (a blob or a string).
    #[rhai_fn(return_raw, volatile)]
    pub fn sendall(s: &mut Socket, data: Dynamic) -> RhaiResult<()> {
        Ok(with_bytes(&data, "sendall", |bytes| s.sendall(bytes))?)
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
        s: &mut Socket,
        data: Dynamic,
        host: ImmutableString,
        port: INT,
    ) -> RhaiResult<INT> {
        Ok(with_bytes(&data, "sendto", |bytes| s.sendto(bytes, &host, port))? as INT)
    }

    /// Sets how long each later call may wait, in seconds (an int or a float); `()` makes
    /// the socket blocking again. A call that waits longer: `TimeoutError`.
    ///
    /// ```rhai
    /// let s = socket();
    /// s.settimeout(2.5);
    /// print(s.gettimeout());   // 2.5
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn settimeout(s: &mut Socket, secs: Dynamic) -> RhaiResult<()> {
        let timeout = seconds(&secs, "the socket timeout")?;
        Ok(s.settimeout(timeout)?)
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
