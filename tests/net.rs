//! Sockets: the echo servers of scenarios 7 and 8 driven by real clients, the UDP and Unix
//! examples, and the catchable error kinds.
//!
//! Servers start on port 0 and print `listening on HOST:PORT`; the test reads the port from
//! that line. Clients here are std::net sockets in the test process (no forking here).

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::support::*;

/// Closes with SO_LINGER 0, so the peer gets a reset instead of an end of stream.
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open, and `linger` is a live struct whose size is passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(stream);
}

#[test]
fn fork_server_serves_many_clients_at_once() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0"]);
    let baseline = fd_count(server.pid);
    let started = Instant::now();
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let mut stream = server.connect();
            std::thread::spawn(move || {
                for trip in 0..50 {
                    let message = format!("client {i} trip {trip}: hello");
                    let reply = round_trip(&mut stream, message.as_bytes());
                    assert_eq!(reply, message.to_uppercase().as_bytes());
                }
                expect_end_after_shutdown(&mut stream);
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert!(started.elapsed() < BACKSTOP * 2);
    server.assert_clean(baseline);
    let (_, err) = server.stop();
    assert_eq!(err, "", "server stderr");
}

#[test]
fn fork_server_serves_hundreds_of_short_connections() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0", "127.0.0.1"]);
    let baseline = fd_count(server.pid);
    let port = server.port;
    let workers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::spawn(move || {
                for n in 0..75 {
                    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    stream.set_read_timeout(Some(BACKSTOP)).unwrap();
                    let message = format!("w{w} n{n}");
                    assert_eq!(
                        round_trip(&mut stream, message.as_bytes()),
                        message.to_uppercase().as_bytes()
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    server.assert_clean(baseline);
    let (_, err) = server.stop();
    assert_eq!(err, "", "server stderr");
}

#[test]
fn fork_server_carries_on_after_a_client_resets() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0"]);
    let baseline = fd_count(server.pid);
    for _ in 0..3 {
        let mut stream = server.connect();
        assert_eq!(round_trip(&mut stream, b"before"), b"BEFORE");
        // Unread data at the server's end, then a reset.
        stream.write_all(b"never read back").unwrap();
        reset(stream);
    }
    let mut stream = server.connect();
    assert_eq!(
        round_trip(&mut stream, b"after the resets"),
        b"AFTER THE RESETS"
    );
    drop(stream);
    server.assert_clean(baseline);
    let (_, err) = server.stop();
    // The handler catches ConnectionResetError and ends normally: nothing on stderr.
    assert_eq!(err, "", "server stderr");
}

/// Issue 10, item 14: a client that sends and leaves before reading the reply makes the
/// handler's `send` fail with `BrokenPipeError` (or its `recv` with `ConnectionResetError`):
/// normal for a server, so the handler ends quietly and nothing reaches stderr.
#[test]
fn fork_server_is_quiet_when_clients_leave_before_the_reply() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0"]);
    let baseline = fd_count(server.pid);
    for _ in 0..20 {
        // More than one recv(1024) takes, so the handler sends several replies, the later
        // ones to a socket that the client's kernel has already reset.
        let mut stream = server.connect();
        stream.write_all(&[b'x'; 16 * 1024]).unwrap();
        drop(stream);
    }
    let mut stream = server.connect();
    assert_eq!(round_trip(&mut stream, b"still here"), b"STILL HERE");
    drop(stream);
    server.assert_clean(baseline);
    let (_, err) = server.stop();
    assert_eq!(err, "", "server stderr");
}

#[test]
fn fork_server_echoes_every_byte_value() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0"]);
    let mut stream = server.connect();
    let all: Vec<u8> = (0..=255u8).collect();
    for _ in 0..4 {
        assert_eq!(round_trip(&mut stream, &all), all.to_ascii_uppercase());
    }
    // A larger burst than one recv(1024) takes: it comes back whole, in order.
    let burst: Vec<u8> = (0..8192u32).map(|i| (i % 256) as u8).collect();
    assert_eq!(round_trip(&mut stream, &burst), burst.to_ascii_uppercase());
}

#[test]
fn fork_server_descriptors_are_close_on_exec() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0"]);
    let mut stream = server.connect();
    assert_eq!(round_trip(&mut stream, b"x"), b"X");
    let handler = children_of(server.pid)[0];
    for pid in [server.pid, handler] {
        let mut sockets = 0;
        for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
        {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            if !target.to_string_lossy().starts_with("socket:") {
                continue;
            }
            sockets += 1;
            let name = entry.file_name();
            let info =
                std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", name.to_string_lossy()))
                    .unwrap();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .unwrap()
                .trim();
            let flags = u32::from_str_radix(flags, 8).unwrap();
            assert_ne!(
                flags & libc::O_CLOEXEC as u32,
                0,
                "fd {name:?} of {pid} lacks O_CLOEXEC"
            );
        }
        assert!(sockets >= 1, "no socket in {pid}");
    }
}

#[test]
fn scenario_7_client_and_server() {
    let server = Server::start("scripts/echo_server.rhai", &["0", "127.0.0.1"]);
    let port = server.port.to_string();
    let run = Test::new()
        .file("scripts/echo_client.rhai")
        .script_args(&[&port])
        .stdin("hello\n\nworld\n")
        .run();
    run.success()
        .stdout("请输入:HELLO\n请输入:请输入:WORLD\n请输入:");
    // One client at a time: a second one is served after the first has gone.
    let run = Test::new()
        .file("scripts/echo_client.rhai")
        .script_args(&[&port])
        .stdin("你好 again\n")
        .run();
    run.success().stdout("请输入:你好 AGAIN\n请输入:");
    // A client that resets does not end the server.
    let mut stream = server.connect();
    stream.write_all(b"going away").unwrap();
    reset(stream);
    let mut stream = server.connect();
    assert_eq!(round_trip(&mut stream, b"still here"), b"STILL HERE");
    drop(stream);
    let (out, err) = server.stop();
    assert_eq!(out[..3], ["hello", "world", "你好 again"]);
    assert_eq!(err, "");
}

#[test]
fn scenario_8_with_the_client_script() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0"]);
    let port = server.port.to_string();
    // Two clients at once: the first is still connected while the second talks.
    let mut first = server.connect();
    assert_eq!(round_trip(&mut first, b"first"), b"FIRST");
    let run = Test::new()
        .file("scripts/echo_client.rhai")
        .script_args(&[&port])
        .stdin("abc\n")
        .run();
    run.success().stdout("请输入:ABC\n请输入:");
    assert_eq!(round_trip(&mut first, b"still"), b"STILL");
}

#[test]
fn echo_client_reports_a_refused_connection() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let run = Test::new()
        .file("scripts/echo_client.rhai")
        .script_args(&[&port.to_string()])
        .stdin("x\n")
        .run();
    run.code(1).stderr_has("ConnectionRefusedError");
}

#[test]
fn udp_echo_answers_a_datagram() {
    let mut server = Server::start("scripts/udp_echo.rhai", &["0", "127.0.0.1", "--once"]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(BACKSTOP)).unwrap();
    client
        .send_to(b"datagram \x00\xff ok", ("127.0.0.1", server.port))
        .unwrap();
    let mut buf = [0; 64];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"DATAGRAM \x00\xff OK");
    assert_eq!(from.port(), server.port);
    let status = server.child.wait().unwrap();
    assert!(status.success());
    let (out, _) = server.stop();
    assert_eq!(
        out,
        [format!("14 bytes from {}", client.local_addr().unwrap())]
    );
}

#[test]
fn unix_echo_runs_twice_on_one_path() {
    let dir = TempDir::new();
    let path = dir.path().join("echo.sock");
    let path = path.to_str().unwrap();
    for _ in 0..2 {
        let run = Test::new()
            .file("scripts/unix_echo.rhai")
            .script_args(&[path])
            .run();
        run.success().stdout(&format!(
            "listening on {path}\nclient got HELLO\nclient got UNIX SOCKETS\ndone\n"
        ));
        assert!(
            !std::path::Path::new(path).exists(),
            "the socket path is removed"
        );
    }
}

#[test]
fn unix_path_is_removed_only_by_the_process_that_bound_it() {
    let dir = TempDir::new();
    let path = dir.path().join("s.sock");
    let script = r#"
        let path = ARGS[0];
        let server = socket(AF_UNIX, SOCK_STREAM);
        server.bind(path);
        server.listen();
        // A child closes its inherited copy: the path stays.
        let p = spawn server.close();
        p.join();
        let c = socket(AF_UNIX);
        c.connect(path);
        print("connected after the child closed");
        c.close();
        server.close();
        try { socket(AF_UNIX).connect(path); } catch (e) { print(e.kind); }
    "#;
    Test::new()
        .script(script)
        .script_args(&[path.to_str().unwrap()])
        .run()
        .success()
        .stdout("connected after the child closed\nFileNotFoundError\n");
}

/// Runs an inline script and returns its stdout after checking it succeeded.
fn script_output(script: &str) -> String {
    let run = Test::new().script(script).run();
    run.success();
    run.stdout
}

#[test]
fn connection_refused_is_errno_111() {
    let out = script_output(
        r#"
        let s = socket();
        s.bind("127.0.0.1", 0);
        let port = s.local_port;
        s.close();
        try { socket().connect("127.0.0.1", port); } catch (e) { print(`${e.kind} ${e.errno}`); }
    "#,
    );
    assert_eq!(out, "ConnectionRefusedError 111\n");
}

#[test]
fn address_in_use_is_os_error_98() {
    let out = script_output(
        r#"
        let a = socket();
        a.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
        a.bind("127.0.0.1", 0);
        a.listen();
        let b = socket();
        b.setsockopt(SOL_SOCKET, SO_REUSEADDR, true);
        try { b.bind("127.0.0.1", a.local_port); } catch (e) { print(`${e.kind} ${e.errno}`); }
    "#,
    );
    assert_eq!(out, "OSError 98\n");
}

#[test]
fn timeouts_raise_timeout_error() {
    let run = Test::new()
        .script(
            r#"
        let server = socket();
        server.bind("127.0.0.1", 0);
        server.listen();
        server.settimeout(0.2);
        try { server.accept(); } catch (e) { print(`accept: ${e.kind}`); }
        let client = socket();
        client.connect("127.0.0.1", server.local_port);
        let conn = server.accept();
        conn.settimeout(0.2);
        print(conn.gettimeout());
        try { conn.recv(10); } catch (e) { print(`recv: ${e.kind}`); }
        conn.settimeout(());
        print(conn.gettimeout());
        client.send("late");
        print(conn.recv(10).decode());
    "#,
        )
        .run();
    run.success()
        .stdout("accept: TimeoutError\n0.2\nrecv: TimeoutError\nNone\nlate\n");
    assert!(
        run.elapsed >= Duration::from_millis(400),
        "{:?}",
        run.elapsed
    );
}

#[test]
fn missing_unix_path_is_file_not_found() {
    let out = script_output(
        r#"
        let s = socket(AF_UNIX, SOCK_STREAM);
        try { s.connect("/nonexistent/procscript.sock"); } catch (e) { print(`${e.kind} ${e.errno}`); }
    "#,
    );
    assert_eq!(out, "FileNotFoundError 2\n");
}

#[test]
fn sending_to_a_closed_peer_is_broken_pipe_not_sigpipe() {
    let out = script_output(
        r#"
        let server = socket();
        server.bind("127.0.0.1", 0);
        server.listen();
        let client = socket();
        client.connect("127.0.0.1", server.local_port);
        server.accept().close();
        for i in 0..200 {
            try {
                client.sendall("data");
            } catch (e) {
                if e.kind == "BrokenPipeError" { print(`${e.kind} ${e.errno}`); break; }
                if e.kind != "ConnectionResetError" { throw e; }
            }
            sleep(0.01);
        }
        print("alive");
    "#,
    );
    assert_eq!(out, "BrokenPipeError 32\nalive\n");
}

#[test]
fn blocked_calls_resume_when_a_child_is_reaped() {
    // While the parent waits in accept and in recv (with and without a timeout), children
    // end and SIGCHLD arrives: the calls carry on, scripts never see EINTR.
    let out = script_output(
        r#"
        fn connect_later(port) {
            sleep(0.3);
            let s = socket();
            s.connect("127.0.0.1", port);
            sleep(0.3);
            s.sendall("payload");
            sleep(0.3);
            s.close();
        }
        let server = socket();
        server.bind("127.0.0.1", 0);
        server.listen();
        let sleepers = [];
        for i in 0..5 { sleepers.push(spawn sleep(0.05 * i)); }
        let p = Process(connect_later, [server.local_port]);
        p.start();
        let conn = server.accept();
        for i in 0..5 { sleepers.push(spawn sleep(0.05 * i)); }
        print(conn.recv(100).decode());
        for i in 0..5 { sleepers.push(spawn sleep(0.05 * i)); }
        conn.settimeout(5);
        print(conn.recv(100).len());
        p.join();
        for s in sleepers { s.join(); }
        print(active_children().len());
    "#,
    );
    assert_eq!(out, "payload\n0\n0\n");
}

#[test]
fn constants_are_visible_in_functions_and_sockets_misuse_is_catchable() {
    let out = script_output(
        r#"
        fn make() { socket(AF_INET6, SOCK_STREAM) }
        let s = make();
        s.bind("::1", 0);
        print(s.local_addr.starts_with("[::1]:"));
        print([AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM, SOL_SOCKET, SO_REUSEADDR, IPPROTO_TCP, TCP_NODELAY]);
        s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
        s.close();
        s.close();
        print(s.fileno());
        print(s.local_addr);
        try { s.recv(1); } catch (e) { print(`${e.kind} ${e.errno}`); }
        try { socket(99); } catch (e) { print(e.kind); }
        try { socket(AF_INET, 42); } catch (e) { print(e.kind); }
        try { socket().bind("/tmp/x.sock"); } catch (e) { print(e.kind); }
        try { socket(AF_UNIX).bind("127.0.0.1", 1); } catch (e) { print(e.kind); }
        try { socket().bind("127.0.0.1", 70000); } catch (e) { print(e.kind); }
        try { socket().recv(-1); } catch (e) { print(e.kind); }
        try { socket().send(42); } catch (e) { print(e.kind); }
        try { socket().settimeout("soon"); } catch (e) { print(e.kind); }
        try { socket().bind(1, 2); } catch (e) { print(type_of(e)); }
        try { blob(1, 0xff).decode(); } catch (e) { print(e.kind); }
        try { "x".encode("latin-9"); } catch (e) { print(e.kind); }
        print(blob(2, 0x61).upper().decode() + "é".upper() + "Ab".encode().lower().decode());
    "#,
    );
    assert_eq!(
        out,
        "true\n[1, 2, 10, 1, 2, 1, 2, 6, 1]\n-1\nNone\nOSError 9\nValueError\nValueError\nTypeError\nTypeError\n\
         ValueError\nValueError\nTypeError\nTypeError\nmap\nValueError\nValueError\nAAÉab\n"
    );
}

#[test]
fn input_reads_lines_until_the_end_of_input() {
    let run = Test::new()
        .script(
            r#"
        loop {
            let line = input("> ");
            if line == () { print("<eof>"); break; }
            print(`[${line}]`);
        }
        print(input() == ());
    "#,
        )
        .stdin("one\n\ntwo\nlast without newline")
        .run();
    run.success()
        .stdout("> [one]\n> []\n> [two]\n> [last without newline]\n> <eof>\ntrue\n");
}

/// The ```` ```rhai ```` blocks of a Markdown text, or of `///` doc comments.
fn rhai_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let line = match trimmed.strip_prefix("///") {
            Some(doc) => doc.strip_prefix(' ').unwrap_or(doc),
            None => line,
        };
        match &mut current {
            None if line.trim_start().starts_with("```rhai") => current = Some(String::new()),
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some(code) => {
                code.push_str(line);
                code.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn socket_doc_examples_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for file in ["docs/sockets.md", "src/net/package.rs"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for block in rhai_blocks(&text) {
            let run = Test::new().script(&block).stdin("").run();
            assert_eq!(
                run.code,
                Some(0),
                "{file} example:\n{block}\nstderr:\n{}",
                run.stderr
            );
            count += 1;
        }
    }
    assert!(count >= 12, "only {count} examples");
}

#[test]
fn input_read_ahead_stays_with_the_parent() {
    let run = Test::new()
        .script(
            r#"
        print(input());
        let p = spawn { print(`child sees the end of input: ${input() == ()}`); };
        p.join();
        print(input());
        print(input() == ());
    "#,
        )
        .stdin("first\nsecond\n")
        .run();
    run.success()
        .stdout("first\nchild sees the end of input: true\nsecond\ntrue\n");
}
