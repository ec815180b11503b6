//! `input()` and the REPL at a real terminal: the binary runs on a pseudo-terminal, the test
//! types keys (arrows, Tab, Ctrl-C, Ctrl-D) and reads the screen's text.
//!
//! A small harness on `nix::pty` rather than a crate: it needs only `openpty`, a session
//! with the pty as controlling terminal, and reads with a deadline.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Keys as a terminal sends them.
const LEFT: &str = "\x1b[D";
const UP: &str = "\x1b[A";
const HOME: &str = "\x1b[H";
const END: &str = "\x1b[F";
const BACKSPACE: &str = "\x7f";
const CTRL_C: &str = "\x03";
const CTRL_D: &str = "\x04";
const CTRL_U: &str = "\x15";
const TAB: &str = "\t";
const ENTER: &str = "\r";

/// The binary on a pseudo-terminal.
struct Pty {
    master: std::fs::File,
    child: Child,
    /// Everything the program wrote, escape sequences removed.
    screen: String,
    /// How much of `screen` earlier `expect`s have consumed.
    seen: usize,
    _dir: TempDir,
}

/// Text without terminal escape sequences (CSI `ESC [ ... final`, and two-byte `ESC x`) and
/// carriage returns.
fn plain(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next() == Some('[') {
                    for d in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&d) {
                            break;
                        }
                    }
                }
            }
            '\r' | '\x07' => {}
            _ => out.push(c),
        }
    }
    out
}

impl Pty {
    /// Starts `procscript ARGS` in a new session whose controlling terminal is a new pty.
    fn spawn(args: &[&str]) -> Self {
        let dir = TempDir::new();
        let size = nix::pty::Winsize {
            ws_row: 30,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(dir.path())
            .env("TERM", "xterm")
            .env("NO_COLOR", "1")
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: between fork and exec the closure only makes async-signal-safe calls:
        // setsid, ioctl and signal.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("procscript starts on the pty");
        Self {
            master: std::fs::File::from(pty.master),
            child,
            screen: String::new(),
            seen: 0,
            _dir: dir,
        }
    }

    /// Writes a script file into the session's directory.
    fn script(text: &str) -> (TempDir, String) {
        let dir = TempDir::new();
        let path = dir.write("script.rhai", text);
        (dir, path.display().to_string())
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Reads what is there within `wait`; false at the end of output.
    fn read_some(&mut self, wait: Duration) -> bool {
        let fd = self.master.as_fd();
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return true,
            Ok(_) => {}
            Err(e) => panic!("poll: {e}"),
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            // The slave side closed (EIO on Linux): the program has ended.
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.screen
                    .push_str(&plain(&String::from_utf8_lossy(&buf[..n])));
                true
            }
        }
    }

    /// Waits until `needle` appears after what earlier calls consumed; returns the text up to
    /// and including it.
    #[track_caller]
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + BACKSTOP;
        loop {
            if let Some(i) = self.screen[self.seen..].find(needle) {
                let end = self.seen + i + needle.len();
                let text = self.screen[self.seen..end].to_string();
                self.seen = end;
                return text;
            }
            let open = self.read_some(Duration::from_millis(100));
            assert!(
                open && Instant::now() < deadline,
                "{needle:?} never appeared; the screen so far:\n{}",
                self.screen
            );
        }
    }

    /// Types `line` and Enter into the REPL and waits for its next prompt (at the start of
    /// a line: the editor redraws the current prompt while keys arrive, and keys sent before
    /// the next prompt would be lost); returns the output in between.
    #[track_caller]
    fn enter(&mut self, line: &str) -> String {
        self.send(&format!("{line}{ENTER}"));
        let deadline = Instant::now() + BACKSTOP;
        loop {
            let rest = &self.screen[self.seen..];
            if let Some(i) = ["\nprocscript> ", "\n        ... "]
                .iter()
                .filter_map(|p| rest.find(p).map(|i| i + p.len()))
                .min()
            {
                let text = rest[..i].to_string();
                self.seen += i;
                return text;
            }
            let open = self.read_some(Duration::from_millis(100));
            assert!(
                open && Instant::now() < deadline,
                "no prompt after {line:?}; the screen so far:\n{}",
                self.screen
            );
        }
    }

    /// Waits for the program to end, reading what it writes meanwhile.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + BACKSTOP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while self.read_some(Duration::from_millis(50)) {}
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the program did not end; the screen:\n{}",
                self.screen
            );
            self.read_some(Duration::from_millis(50));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep the raw descriptor alive until the child is gone.
        let _ = self.master.as_raw_fd();
    }
}

#[test]
fn input_edits_the_line_at_a_terminal() {
    let (_dir, script) = Pty::script(
        r#"
loop {
    let msg = input("请输入:");
    if msg == () { print("end of input"); break; }
    print(`got [${msg}]`);
}
try { input("again:"); } catch (e) { print(`caught ${e.kind}`); }
let sleeper = spawn sleep(60);
input("last:");
print("not reached");
"#,
    );
    let mut pty = Pty::spawn(&["run", &script]);
    pty.expect("请输入:");
    pty.send(&format!("hello wrld{LEFT}{LEFT}{LEFT}o{END}!{ENTER}"));
    pty.expect("got [hello world!]");
    // History of this run, and Home.
    pty.expect("请输入:");
    pty.send(&format!("{UP}{HOME}X{ENTER}"));
    pty.expect("got [Xhello world!]");
    pty.expect("请输入:");
    pty.send(&format!("abc{BACKSPACE}{ENTER}"));
    pty.expect("got [ab]");
    // Ctrl-D: the end of input, `()`.
    pty.expect("请输入:");
    pty.send(CTRL_D);
    pty.expect("end of input");
    // Ctrl-C: a catchable KeyboardInterrupt.
    pty.expect("again:");
    pty.send(CTRL_C);
    pty.expect("caught KeyboardInterrupt");
    // Uncaught, it ends the script with 130, and the child got SIGINT as from a terminal.
    pty.expect("last:");
    let started = Instant::now();
    pty.send(CTRL_C);
    let status = pty.wait();
    assert_eq!(status.code(), Some(130), "{}", pty.screen);
    assert!(pty.screen.contains("KeyboardInterrupt"), "{}", pty.screen);
    assert!(!pty.screen.contains("not reached"), "{}", pty.screen);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the sleeping child was waited for: {:?}",
        started.elapsed()
    );
}

#[test]
fn repl_completes_lists_and_shows_the_scope() {
    let mut pty = Pty::spawn(&["repl"]);
    pty.expect("procscript> ");
    pty.enter("fn worker_task(x) { x * 2 }");
    pty.enter("let worker_count = 3;");
    // Two of the session's own names match: Tab twice lists both.
    pty.send(&format!("worker_{TAB}{TAB}"));
    let listed = pty.expect("worker_task");
    assert!(listed.contains("worker_count"), "{listed}");
    // The list is followed by the line being edited, redrawn.
    pty.expect("procscript> worker_");
    let out = pty.enter(&format!("t{TAB}(worker_count)"));
    assert!(out.contains("=> 6"), "{out}");
    // A value's members after `.`, its own fields included.
    pty.enter("let p = Process(#{ count: 7, run: || 0 });");
    let out = pty.enter(&format!("p.cou{TAB}"));
    assert!(out.contains("=> 7"), "{out}");
    let out = pty.enter(&format!("p.is_al{TAB}()"));
    assert!(out.contains("=> false"), "{out}");
    pty.send(&format!("p.{TAB}{TAB}"));
    let members = pty.expect("\nprocscript> p.");
    for name in ["count", "exitcode", "join", "pid", "start"] {
        assert!(members.contains(name), "{name} not listed: {members}");
    }
    assert!(!members.contains("accept"), "{members}");
    let out = pty.enter(&format!("{CTRL_U}p.exitcode"));
    assert!(out.contains("=> None"), "{out}");
    let dir = pty.enter("dir()");
    for entry in ["worker_count (i64)", "p (Process)", "worker_task(x)"] {
        assert!(dir.contains(entry), "{entry} not in {dir}");
    }
    let help = pty.enter("help()");
    assert!(
        help.contains("variables: p (Process), worker_count (i64)"),
        "{help}"
    );
    pty.send(&format!("quit{ENTER}"));
    assert_eq!(pty.wait().code(), Some(0));
}

#[test]
fn repl_errors_in_children_show_their_line_and_ctrl_d_names_the_wait() {
    let mut pty = Pty::spawn(&["repl"]);
    pty.expect("procscript> ");
    pty.enter("fn bad(n) {");
    pty.enter("    let y = n + nope;");
    pty.enter("}");
    let shown = pty.enter("let c = Process(bad, [1]); c.start(); c.join()");
    assert!(shown.contains("=> 1"), "{shown}");
    assert!(shown.contains("Process Process-1:"), "{shown}");
    assert!(shown.contains("<repl>:2:17"), "{shown}");
    assert!(shown.contains("let y = n + nope;"), "{shown}");
    assert!(!shown.contains("<script>"), "{shown}");
    pty.enter("let s = spawn sleep(60);");
    let started = Instant::now();
    pty.send(CTRL_D);
    pty.expect("waiting for 1 child (Ctrl-C to end them)");
    pty.send(CTRL_C);
    let status = pty.wait();
    assert_eq!(status.code(), Some(130), "{}", pty.screen);
    assert!(started.elapsed() < Duration::from_secs(30));
}
