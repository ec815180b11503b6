//! A just-style `Test` builder over the real binary, and checks on the system afterwards.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_procscript");

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("procscript-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Result of a finished run.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
    pub elapsed: Duration,
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }
    #[track_caller]
    pub fn stdout(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout, expected, "stdout; stderr:\n{}", self.stderr);
        self
    }
    #[track_caller]
    pub fn stderr(&self, expected: &str) -> &Self {
        assert_eq!(self.stderr, expected, "stderr; stdout:\n{}", self.stdout);
        self
    }
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
        self
    }
    /// stdout lines, sorted: for output whose order between processes is free.
    pub fn sorted_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.stdout.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Builder: a script (inline text or a file), arguments, stdin; then `run()`.
pub struct Test {
    dir: TempDir,
    script: Option<PathBuf>,
    flags: Vec<String>,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    env: Vec<(String, String)>,
    timeout: Duration,
}

impl Test {
    pub fn new() -> Self {
        Self {
            dir: TempDir::new(),
            script: None,
            flags: Vec::new(),
            args: Vec::new(),
            stdin: None,
            env: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }
    /// Runs `procscript run <script text>` (written as `script.rhai` in a temp dir).
    pub fn script(mut self, text: &str) -> Self {
        self.script = Some(self.dir.write("script.rhai", text));
        self
    }
    /// Runs an existing script file (path relative to the crate root).
    pub fn file(mut self, path: &str) -> Self {
        self.script = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(path));
        self
    }
    /// Options of `run`, placed before the script: `run --label SCRIPT`.
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.flags = flags.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Raw arguments to the binary (instead of `run SCRIPT`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Arguments after the script: the script's `ARGS`.
    pub fn script_args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }
    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.as_bytes().to_vec());
        self
    }
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        if let Some(script) = &self.script {
            cmd.arg("run").args(&self.flags).arg(script);
        }
        cmd.args(&self.args);
        cmd.env("NO_COLOR", "1").env("HOME", self.dir.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        // A test run started as a background job without job control inherits SIGINT ignored,
        // and procscript (like CPython) keeps an ignored SIGINT ignored: give the binary the
        // default disposition, so that the Ctrl-C tests test Ctrl-C wherever they run.
        // SAFETY: the closure runs in the forked child before exec and only calls signal(2),
        // which is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        cmd
    }
    /// Starts the binary without waiting.
    pub fn spawn(&self) -> Child {
        let mut cmd = self.command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("procscript binary starts");
        if let Some(input) = &self.stdin {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input).unwrap();
        }
        child
    }
    /// Runs to the end (killed after the timeout, a backstop far above any expected time).
    pub fn run(self) -> Run {
        let start = Instant::now();
        let child = self.spawn();
        let output = wait_with_timeout(child, self.timeout);
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code(),
            elapsed: start.elapsed(),
        }
    }
}

/// Waits for `child`, killing it if it outlives `timeout`.
pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut stdout) = stdout {
            let _ = stdout.read_to_end(&mut buf);
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("procscript did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Children of `pid` (from `/proc/<pid>/task/*/children`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return pids;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    pids
}

/// State letter of a process (`Z` for a zombie), `None` once it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

/// Zombie children of `pid`.
pub fn zombies_of(pid: u32) -> Vec<u32> {
    children_of(pid)
        .into_iter()
        .filter(|c| process_state(*c) == Some('Z'))
        .collect()
}

/// Number of open descriptors of `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Whether `pid` still exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    matches!(process_state(pid), Some(s) if s != 'Z')
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads lines from a child's stdout until one satisfies `pred` (for marker-line sync).
pub fn read_until(
    reader: &mut impl std::io::BufRead,
    mut pred: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return lines;
        }
        let line = line.trim_end_matches('\n').to_string();
        let done = pred(&line);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

// Servers driven by clients in the test process (tests/net.rs, tests/stress.rs).
//
// Servers start on port 0 and print `listening on HOST:PORT`; the test reads the port from
// that line.

/// Wide backstop for any single read or wait; never reached when things work.
pub const BACKSTOP: Duration = Duration::from_secs(20);

/// A server script running in the background, killed by pid when dropped.
pub struct Server {
    pub child: Child,
    pub pid: u32,
    pub port: u16,
    stdout: Option<JoinHandle<Vec<String>>>,
    stderr: Option<JoinHandle<String>>,
    _test: Test,
}

impl Server {
    pub fn start(script: &str, args: &[&str]) -> Self {
        let test = Test::new().file(script).script_args(args);
        let mut child = test.spawn();
        let pid = child.id();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let lines = read_until(&mut out, |l| l.starts_with("listening on "));
        let marker = lines.last().cloned().unwrap_or_default();
        assert!(
            marker.starts_with("listening on "),
            "no marker line from {script}: {lines:?}"
        );
        let port = marker.rsplit(':').next().unwrap().parse().unwrap();
        // Keep reading, so that a server that prints what it receives never blocks on a
        // full pipe.
        let stdout = std::thread::spawn(move || out.lines().map_while(Result::ok).collect());
        let stderr = read_in_background(child.stderr.take().unwrap());
        Self {
            child,
            pid,
            port,
            stdout: Some(stdout),
            stderr: Some(stderr),
            _test: test,
        }
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the server");
        stream.set_read_timeout(Some(BACKSTOP)).unwrap();
        stream.set_write_timeout(Some(BACKSTOP)).unwrap();
        stream
    }

    /// Kills the server by pid and returns what it printed (stdout lines, stderr).
    pub fn stop(mut self) -> (Vec<String>, String) {
        self.kill();
        let out = self.stdout.take().unwrap().join().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        (out, err)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// After load: every handler child gone (so none left as a zombie either), and the
    /// server's descriptor count back to `baseline`.
    pub fn assert_clean(&self, baseline: usize) {
        let gone = eventually(BACKSTOP, || children_of(self.pid).is_empty());
        assert!(
            gone,
            "children left: {:?}, zombies among them: {:?}",
            children_of(self.pid),
            zombies_of(self.pid)
        );
        assert!(zombies_of(self.pid).is_empty());
        let settled = eventually(BACKSTOP, || fd_count(self.pid) == baseline);
        assert!(
            settled,
            "descriptors: {} now, {baseline} before the load",
            fd_count(self.pid)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request and its reply, read to the expected length (TCP may split the reply).
pub fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).unwrap();
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).expect("a whole reply");
    reply
}

/// Reads a child's pipe to the end on a thread, so the child never blocks on a full pipe.
pub fn read_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Half-closes a client's connection and checks that the server then ends the stream.
pub fn expect_end_after_shutdown(stream: &mut std::net::TcpStream) {
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "end of stream after the client's end");
}

/// Every function procscript adds to Rhai (not properties, indexers or Rhai's own), as
/// `(name, arity)`: read from the engine's metadata through the public API, as a host
/// could, so that tests cover natives added later.
pub fn natives() -> Vec<(String, usize)> {
    let runtime = procscript::Runtime::new();
    let json = runtime
        .engine()
        .gen_fn_metadata_to_json(false)
        .expect("function metadata");
    let metadata: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut natives: Vec<(String, usize)> = metadata["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = f["name"].as_str().unwrap().to_string();
            let arity = f["params"].as_array().map_or(0, Vec::len);
            (name, arity)
        })
        .filter(|(name, _)| !name.contains('$'))
        .collect();
    natives.sort();
    natives.dedup();
    natives
}
