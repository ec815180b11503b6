//! `Pipe()` and its ends, `Connection`s: `send`, `recv`, `send_bytes`, `recv_bytes`, `poll`.

use super::*;

#[export_module]
#[allow(unreachable_pub)]
pub(super) mod pipe_functions {
    use super::*;

    /// One end of a `Pipe()`.
    pub type Connection = super::Connection;

    /// Two connected ends `[a, b]`: what one end sends, the other receives, both ways.
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// let a = ends[0];
    /// let b = ends[1];
    /// let p = spawn { b.send(#{ pid: getpid(), data: [1, 2.5, "x"] }); };
    /// print(a.recv().data);   // [1, 2.5, "x"]
    /// p.join();
    /// ```
    #[rhai_fn(name = "Pipe", return_raw, volatile)]
    pub fn pipe() -> RhaiResult<Array> {
        let (a, b) = super::Connection::pair(true)?;
        Ok(vec![Dynamic::from(a), Dynamic::from(b)])
    }

    /// `Pipe(false)`: a one-way pipe `[reader, writer]`, in Python's order: the first end
    /// only receives, the second only sends. `Pipe(true)` is `Pipe()`.
    ///
    /// ```rhai
    /// let ends = Pipe(false);
    /// let reader = ends[0];
    /// let writer = ends[1];
    /// let p = spawn { writer.send("one way"); };
    /// print(reader.recv());                        // one way
    /// print(`${reader.writable} ${writer.readable}`);   // false false
    /// p.join();
    /// ```
    #[rhai_fn(name = "Pipe", return_raw, volatile)]
    pub fn pipe_duplex(duplex: bool) -> RhaiResult<Array> {
        let (a, b) = super::Connection::pair(duplex)?;
        Ok(vec![Dynamic::from(a), Dynamic::from(b)])
    }

    /// Sends a value to the other end: `()`, booleans, numbers, strings, chars, blobs, and
    /// arrays and maps of these (anything else is a `ValueError`). Waits while the other
    /// end's buffer is full; `BrokenPipeError` once the other end is closed. Several
    /// processes may send on one end at once: each message arrives whole.
    #[rhai_fn(name = "send", return_raw, pure, volatile)]
    pub fn conn_send(conn: &mut Connection, value: Dynamic) -> RhaiResult<()> {
        Ok(conn.send(&value, crate::convert::script_type_name)?)
    }

    /// Sends the bytes of a blob as one message, as they are (Python's `send_bytes`); the
    /// other end reads it with `recv_bytes()` (`recv()` would be a `ValueError`: bytes are
    /// not a value).
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// ends[0].send_bytes("hello".encode());
    /// print(ends[1].recv_bytes().decode());   // hello
    /// ```
    #[rhai_fn(name = "send_bytes", return_raw, pure, volatile)]
    pub fn conn_send_bytes(conn: &mut Connection, bytes: Blob) -> RhaiResult<()> {
        Ok(conn.send_bytes(&bytes)?)
    }

    /// Sends the bytes of `bytes` from `offset` to its end. A negative `offset` or one past
    /// the end is a `ValueError`, as in Python.
    #[rhai_fn(name = "send_bytes", return_raw, pure, volatile)]
    pub fn conn_send_bytes_from(conn: &mut Connection, bytes: Blob, offset: INT) -> RhaiResult<()> {
        let (start, end) = byte_range(bytes.len(), offset, None)?;
        Ok(conn.send_bytes(&bytes[start..end])?)
    }

    /// Sends `size` bytes of `bytes` from `offset`, as Python's `send_bytes(buf, offset,
    /// size)`: a negative `offset` or `size`, or a range past the end, is a `ValueError`.
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// ends[0].send_bytes("hello world".encode(), 6, 5);
    /// print(ends[1].recv_bytes().decode());   // world
    /// ```
    #[rhai_fn(name = "send_bytes", return_raw, pure, volatile)]
    pub fn conn_send_bytes_range(
        conn: &mut Connection,
        bytes: Blob,
        offset: INT,
        size: INT,
    ) -> RhaiResult<()> {
        let (start, end) = byte_range(bytes.len(), offset, Some(size))?;
        Ok(conn.send_bytes(&bytes[start..end])?)
    }

    /// Receives the next value, waiting for it. `EOFError` once the other end is closed and
    /// every message has been read.
    #[rhai_fn(name = "recv", return_raw, pure, volatile)]
    pub fn conn_recv(conn: &mut Connection) -> RhaiResult<Dynamic> {
        Ok(conn.recv(None)?)
    }

    /// Receives the next value, waiting at most `timeout` seconds (`TimeoutError`; a
    /// negative timeout does not wait, `()` waits without limit).
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// try { ends[0].recv(0.01); } catch (e) { print(e.kind); }   // TimeoutError
    /// ```
    #[rhai_fn(name = "recv", return_raw, pure, volatile)]
    pub fn conn_recv_timeout(conn: &mut Connection, timeout: Dynamic) -> RhaiResult<Dynamic> {
        let timeout = super::wait_timeout(&timeout, "the recv timeout", true)?;
        Ok(conn.recv(timeout)?)
    }

    /// Receives the next message as a blob of bytes (Python's `recv_bytes`): the bytes sent
    /// with `send_bytes`, or, for a value sent with `send`, its encoding, which
    /// `send_bytes` passes on unchanged (a relay need not decode what it forwards).
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// ends[0].send([1, 2]);
    /// let raw = ends[1].recv_bytes();   // the encoding of [1, 2]
    /// ends[1].send_bytes(raw);
    /// print(ends[0].recv());            // [1, 2]
    /// ```
    #[rhai_fn(name = "recv_bytes", return_raw, pure, volatile)]
    pub fn conn_recv_bytes(conn: &mut Connection) -> RhaiResult<Blob> {
        recv_bytes(conn, None)
    }

    /// As `recv_bytes()`, but a message longer than `maxlength` bytes is an `OSError` ("bad
    /// message length", as in Python). Python's connection is unusable after that; here the
    /// long message is dropped and the next one can be received.
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// ends[0].send_bytes(blob(100, 1));
    /// ends[0].send_bytes(blob(3, 2));
    /// try { ends[1].recv_bytes(10); } catch (e) { print(e.kind); }   // OSError
    /// print(ends[1].recv_bytes(10).len());                           // 3
    /// ```
    #[rhai_fn(name = "recv_bytes", return_raw, pure, volatile)]
    pub fn conn_recv_bytes_max(conn: &mut Connection, maxlength: INT) -> RhaiResult<Blob> {
        if maxlength < 0 {
            return Err(Error::value("negative maxlength").into());
        }
        recv_bytes(conn, Some(maxlength as u64))
    }

    /// Whether a value (or end of input) is waiting, without waiting.
    #[rhai_fn(name = "poll", return_raw, pure, volatile)]
    pub fn conn_poll(conn: &mut Connection) -> RhaiResult<bool> {
        Ok(conn.poll(Some(Duration::ZERO))?)
    }

    /// Whether a value (or end of input) arrives within `timeout` seconds. `()` waits
    /// without limit (Python's `poll(None)`); a negative timeout does not wait (as in
    /// Python, where `poll(-1)` is `poll(0)`).
    ///
    /// ```rhai
    /// let ends = Pipe();
    /// let p = spawn { sleep(0.05); ends[1].send(1); };
    /// print(ends[0].poll(-1));   // false: does not wait
    /// print(ends[0].poll(()));   // true, once the message is there
    /// p.join();
    /// ```
    #[rhai_fn(name = "poll", return_raw, pure, volatile)]
    pub fn conn_poll_timeout(conn: &mut Connection, timeout: Dynamic) -> RhaiResult<bool> {
        let timeout = super::wait_timeout(&timeout, "the poll timeout", false)?;
        Ok(conn.poll(timeout)?)
    }

    /// Closes this end in this process (other processes' copies stay open). Closing twice
    /// is fine; using a closed end is an `OSError`.
    #[rhai_fn(name = "close", pure, volatile)]
    pub fn conn_close(conn: &mut Connection) {
        conn.close();
    }

    /// Whether `close()` was called on this end.
    #[rhai_fn(get = "closed", pure, volatile)]
    pub fn conn_closed(conn: &mut Connection) -> bool {
        conn.closed()
    }

    /// Whether this end can receive (`false` only for the second end of `Pipe(false)`).
    ///
    /// ```rhai
    /// let ends = Pipe(false);
    /// print(`${ends[0].readable} ${ends[1].readable}`);   // true false
    /// ```
    #[rhai_fn(get = "readable", pure)]
    pub fn conn_readable(conn: &mut Connection) -> bool {
        conn.readable()
    }

    /// Whether this end can send (`false` only for the first end of `Pipe(false)`).
    ///
    /// ```rhai
    /// let ends = Pipe(false);
    /// print(`${ends[0].writable} ${ends[1].writable}`);   // false true
    /// ```
    #[rhai_fn(get = "writable", pure)]
    pub fn conn_writable(conn: &mut Connection) -> bool {
        conn.writable()
    }

    /// The descriptor number (-1 once closed).
    #[rhai_fn(name = "fileno", pure, volatile)]
    pub fn conn_fileno(conn: &mut Connection) -> INT {
        conn.fileno().into()
    }

    /// `<Connection fd=5>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn conn_to_string(conn: &mut Connection) -> String {
        if conn.closed() {
            "<Connection closed>".into()
        } else {
            format!("<Connection fd={}>", conn.fileno())
        }
    }
}

/// Python's checks of `send_bytes(buf, offset, size)`: the byte range to send.
fn byte_range(len: usize, offset: INT, size: Option<INT>) -> Result<(usize, usize), Error> {
    if offset < 0 {
        return Err(Error::value("offset is negative"));
    }
    let start = offset as u64;
    if (len as u64) < start {
        return Err(Error::value("buffer length < offset"));
    }
    let end = match size {
        None => len as u64,
        Some(size) if size < 0 => return Err(Error::value("size is negative")),
        Some(size) => {
            let end = start.saturating_add(size as u64);
            if (len as u64) < end {
                return Err(Error::value("buffer length < offset + size"));
            }
            end
        }
    };
    Ok((start as usize, end as usize))
}

/// `recv_bytes`, with Python's error for a message over `maxlength`.
fn recv_bytes(conn: &Connection, maxlength: Option<u64>) -> RhaiResult<Blob> {
    match conn.recv_bytes(maxlength)? {
        Ok(bytes) => Ok(bytes),
        Err(n) => Err(Error::new(
            ErrorKind::OSError,
            format!(
                "bad message length: the message has {n} bytes, more than maxlength {} \
                 (it was dropped)",
                maxlength.unwrap_or(0)
            ),
        )
        .into()),
    }
}
