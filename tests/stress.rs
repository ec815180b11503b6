//! Stress: thousands of processes and hundreds of connections, then nothing left behind.
//!
//! Every load is bounded in count, and every wait has a wide backstop. The scripts stop at
//! marker lines (`print("phase")` then `input("")`), so the test inspects `/proc/<pid>` while
//! the script is paused: children (and zombies among them), and the descriptor count. Never
//! a bare sleep. Sockets are on loopback, ports from bind(0).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::*;

/// A script run that stops at marker lines and goes on when the test says so.
pub(crate) struct Paused {
    child: Child,
    pub(crate) pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    _test: Test,
}

impl Paused {
    pub(crate) fn start(script: &str) -> Self {
        let test = Test::new().script(script);
        let mut child = test
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("procscript binary starts");
        let pid = child.id();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = read_in_background(child.stderr.take().unwrap());
        Self {
            child,
            pid,
            stdin,
            stdout,
            stderr: Some(stderr),
            _test: test,
        }
    }

    /// Reads lines up to the next one, which the script prints before it pauses.
    #[track_caller]
    pub(crate) fn marker(&mut self) -> String {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap_or(0);
        if n == 0 {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let err = self.stderr.take().unwrap().join().unwrap();
            panic!("the script ended before its next marker line; stderr:\n{err}");
        }
        line.trim_end().to_string()
    }

    /// Lets the paused script go on (its `input("")` returns).
    pub(crate) fn resume(&mut self) {
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for the end of the run: exit code and stderr.
    pub(crate) fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the script did not end");
            std::thread::sleep(Duration::from_millis(5));
        };
        (status.code(), self.stderr.take().unwrap().join().unwrap())
    }

    /// No child left (none alive, none a zombie), and the descriptor count at `baseline`.
    #[track_caller]
    pub(crate) fn assert_clean(&self, baseline: usize, when: &str) {
        let children = children_of(self.pid);
        assert!(
            children.is_empty(),
            "{when}: children left: {children:?}, zombies among them: {:?}",
            zombies_of(self.pid)
        );
        assert_eq!(fd_count(self.pid), baseline, "{when}: descriptors");
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ten_thousand_sequential_spawns_leave_nothing_behind() {
    let mut run = Paused::start(
        r#"
        print("ready");
        input("");
        for round in 0..4 {
            let failed = 0;
            for i in 0..2500 {
                let p = spawn 0;
                p.join();
                if p.exitcode != 0 { failed += 1; }
            }
            print(`round ${round} failed ${failed}`);
            input("");
        }
        print("done");
    "#,
    );
    assert_eq!(run.marker(), "ready");
    let baseline = fd_count(run.pid);
    run.assert_clean(baseline, "before");
    run.resume();
    for round in 0..4 {
        assert_eq!(run.marker(), format!("round {round} failed 0"));
        run.assert_clean(baseline, &format!("after {} spawns", (round + 1) * 2500));
        run.resume();
    }
    assert_eq!(run.marker(), "done");
    let (code, err) = run.finish();
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert_eq!(err, "");
}

/// Issue 9: 6,000 children alive at once (as many as the descriptor limit allows: each
/// holds a pidfd in the parent), all joined with their exit codes, none left behind.
#[test]
fn six_thousand_children_alive_at_once_are_all_joined_with_their_codes() {
    // SAFETY: getrlimit only writes the struct it is given.
    let hard = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_max
    };
    let n = 6000.min(hard.saturating_sub(500) as usize);
    if n < 6000 {
        eprintln!("note: the descriptor limit ({hard}) allows {n} children, not 6000");
    }
    let mut run = Paused::start(&format!(
        r#"
        let release = Event();
        print("ready");
        input("");
        let ps = [];
        for i in 0..{n} {{ ps.push(spawn {{ release.wait(); exit(i % 200); }}); }}
        print(`started ${{active_children().len()}}`);
        input("");
        release.set();
        let right = 0;
        for i in 0..{n} {{ if ps[i].join() == i % 200 {{ right += 1; }} }}
        print(`joined ${{right}} right, active ${{active_children().len()}}`);
        input("");
    "#
    ));
    assert_eq!(run.marker(), "ready");
    let baseline = fd_count(run.pid);
    run.resume();
    assert_eq!(run.marker(), format!("started {n}"));
    let children = children_of(run.pid);
    assert_eq!(children.len(), n, "all alive at once");
    assert!(zombies_of(run.pid).is_empty());
    run.resume();
    assert_eq!(run.marker(), format!("joined {n} right, active 0"));
    run.assert_clean(baseline, "after joining them all");
    run.resume();
    let (code, err) = run.finish();
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert_eq!(err, "");
}

#[test]
fn five_hundred_concurrent_children_leave_nothing_behind() {
    let mut run = Paused::start(
        r#"
        let release = Event();
        print("ready");
        input("");
        let ps = [];
        for i in 0..500 { ps.push(spawn release.wait()); }
        print(`started ${active_children().len()}`);
        input("");
        release.set();
        let ok = 0;
        for p in ps {
            p.join();
            if p.exitcode == 0 { ok += 1; }
        }
        print(`joined ${ok}, active ${active_children().len()}`);
        input("");
        ps = [];
        print("dropped");
        input("");
    "#,
    );
    assert_eq!(run.marker(), "ready");
    let baseline = fd_count(run.pid);
    run.assert_clean(baseline, "before");
    run.resume();
    assert_eq!(run.marker(), "started 500");
    // All 500 exist at once, each blocked on the event: none has ended, none is a zombie.
    let children = children_of(run.pid);
    assert_eq!(children.len(), 500);
    assert!(zombies_of(run.pid).is_empty());
    run.resume();
    assert_eq!(run.marker(), "joined 500, active 0");
    run.assert_clean(baseline, "after joining 500");
    for pid in children {
        assert!(!alive(pid), "child {pid} is still alive");
    }
    run.resume();
    assert_eq!(run.marker(), "dropped");
    run.assert_clean(baseline, "after dropping the handles");
    run.resume();
    let (code, err) = run.finish();
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert_eq!(err, "");
}

/// Clients that talk at the same time.
const CLIENTS: usize = 200;
/// Round trips per client, the first one made before the others connect.
const TRIPS: usize = 4;

#[test]
fn fork_server_serves_200_clients_while_one_idles() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0"]);
    let baseline = fd_count(server.pid);
    // A client that connects and never sends: its handler waits in recv from now on.
    let idle = server.connect();
    // Each client connects and is served once before the next connects (so the accept
    // backlog never overflows), then all of them talk at once. The test thread holds the
    // start until it has counted the handlers: a client let go earlier can finish, and its
    // handler end, before a loaded machine gets round to counting.
    let start = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let mut stream = server.connect();
            let hello = format!("client {i} hello");
            assert_eq!(
                round_trip(&mut stream, hello.as_bytes()),
                hello.to_uppercase().as_bytes()
            );
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                for trip in 1..TRIPS {
                    let message = format!("client {i} trip {trip}");
                    let reply = round_trip(&mut stream, message.as_bytes());
                    assert_eq!(reply, message.to_uppercase().as_bytes());
                }
                expect_end_after_shutdown(&mut stream);
            })
        })
        .collect();
    // One handler per client, all alive together, plus the idle one's.
    assert_eq!(children_of(server.pid).len(), CLIENTS + 1);
    start.wait();
    for client in clients {
        client.join().unwrap();
    }
    // The others are done while the idle client is still connected: it delayed nobody.
    // Its handler is the one child left once theirs have ended.
    let one_left = eventually(BACKSTOP, || children_of(server.pid).len() == 1);
    assert!(one_left, "children: {:?}", children_of(server.pid));
    assert!(zombies_of(server.pid).is_empty());
    assert!(alive(children_of(server.pid)[0]));
    drop(idle);
    server.assert_clean(baseline);
    let (_, err) = server.stop();
    assert_eq!(err, "", "server stderr");
}

#[test]
fn a_connection_that_never_sends_does_not_delay_the_next_one() {
    let server = Server::start("scripts/fork_echo_server.rhai", &["0"]);
    let baseline = fd_count(server.pid);
    let idle: Vec<TcpStream> = (0..5).map(|_| server.connect()).collect();
    let started = Instant::now();
    let mut stream = server.connect();
    assert_eq!(round_trip(&mut stream, b"not delayed"), b"NOT DELAYED");
    // Far below the read backstop: the idle connections hold up nothing.
    assert!(started.elapsed() < BACKSTOP / 2, "{:?}", started.elapsed());
    drop(stream);
    drop(idle);
    server.assert_clean(baseline);
}
