//! A throwaway OpenSSH server on loopback, for tests that need `ssh` to a real host.
//!
//! [`Sshd::start_or_skip`] generates a host key and a user key with `ssh-keygen` in a
//! temporary directory, writes an `sshd_config` of its own (127.0.0.1 only, a free port, key
//! authentication for the current user only, no PAM), starts `/usr/sbin/sshd -D` on it and
//! waits for "Server listening". The client options that reach it ([`Sshd::ssh_options`])
//! ignore the user's own ssh configuration and known hosts. Dropping the server stops it by
//! pid (SIGTERM) and removes the directory; the kernel also ends it if the test thread that
//! started it dies first.
//!
//! On a machine without sshd (or without the ssh client), `start_or_skip` prints one loud line
//! to stderr naming the test and the reason, and returns `None`; with
//! `PROCSCRIPT_REQUIRE_SSHD=1` (as `.ci/run` sets it) that is a failure instead.
//!
//! Loopback only: nothing here contacts any other address.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::TempDir;

/// The OpenSSH server.
pub const SSHD: &str = "/usr/sbin/sshd";

/// The variable that turns a skip into a failure.
pub const REQUIRE: &str = "PROCSCRIPT_REQUIRE_SSHD";

/// Settings that older or newer sshd versions may not know; dropped if `sshd -t` rejects them.
const OPTIONAL: [&str; 2] = ["PerSourcePenalties", "KbdInteractiveAuthentication"];

/// A running throwaway sshd.
pub struct Sshd {
    child: Child,
    dir: TempDir,
    port: u16,
    user: String,
    key: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Sshd {
    /// Starts a server for `test`, or says loudly why `test` is skipped and returns `None`
    /// (panics instead when `PROCSCRIPT_REQUIRE_SSHD=1`).
    pub fn start_or_skip(test: &str) -> Option<Self> {
        match Self::start() {
            Ok(sshd) => Some(sshd),
            Err(why) => {
                skip(test, &why);
                None
            }
        }
    }

    /// Starts a server, or says why it cannot.
    pub fn start() -> Result<Self, String> {
        if !Path::new(SSHD).exists() {
            return Err(format!(
                "no {SSHD} (install it with `apt-get install -y openssh-server`)"
            ));
        }
        for tool in ["ssh", "ssh-keygen"] {
            if !on_path(tool) {
                return Err(format!(
                    "no `{tool}` on PATH (install it with `apt-get install -y openssh-client`)"
                ));
            }
        }
        let dir = TempDir::new();
        let host_key = dir.path().join("host_ed25519");
        let key = dir.path().join("user_ed25519");
        keygen(&host_key)?;
        keygen(&key)?;
        std::fs::copy(
            key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .map_err(|e| format!("cannot write authorized_keys: {e}"))?;
        let user = output(Command::new("id").arg("-un"))?.trim().to_string();
        if is_root() && !Path::new("/run/sshd").exists() {
            // sshd's privilege separation directory, which the package's service creates.
            std::fs::create_dir_all("/run/sshd")
                .map_err(|e| format!("cannot create /run/sshd: {e}"))?;
        }
        let mut last = String::new();
        // A port found free may be taken before sshd binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let config = write_config(dir.path(), port, &host_key, &user)?;
            match launch(&config) {
                Ok((child, log)) => {
                    return Ok(Self {
                        child,
                        dir,
                        port,
                        user,
                        key,
                        log,
                    })
                }
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid of the listening sshd (every session's sshd descends from it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The user it lets in (the one running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The ssh destination: `user@127.0.0.1`.
    pub fn host(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Client options that reach this server with its key and nothing of the user's own
    /// configuration, never asking anything.
    pub fn ssh_options(&self) -> Vec<String> {
        let port = self.port.to_string();
        let key = self.key.display().to_string();
        [
            "-F",
            "/dev/null",
            "-p",
            &port,
            "-i",
            &key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=20",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Script lines defining `HOST` and `SSH` (the options as a Rhai array), to put before a
    /// test script: `run(argv, #{ host: HOST, ssh: SSH })`.
    pub fn rhai_prelude(&self) -> String {
        format!(
            "const HOST = {};\nconst SSH = {};\n",
            rhai_string(&self.host()),
            rhai_array(&self.ssh_options())
        )
    }

    /// What sshd logged so far (for failure messages).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child, which is not reaped before the wait
        // below, so the pid cannot name another process.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// A Rhai string literal for `text`.
pub fn rhai_string(text: &str) -> String {
    // Rust's escapes (\" \\ \n \t \u{..}) are Rhai's too.
    format!("{text:?}")
}

/// A Rhai array literal of strings.
pub fn rhai_array(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| rhai_string(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The loud line for a skipped test, or a failure under `PROCSCRIPT_REQUIRE_SSHD=1`.
pub fn skip(test: &str, why: &str) {
    let line = format!("SKIPPED {test}: {why}");
    assert!(
        std::env::var_os(REQUIRE).is_none_or(|v| v != "1"),
        "{line}, and {REQUIRE}=1 requires it"
    );
    // Straight to stderr: the test harness does not capture this, so it is seen.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\n!!! {line} !!!\n").as_bytes(),
    );
}

/// Whether `tool` is an executable on PATH.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(tool)).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// A loopback port nothing listens on (at the moment it is returned).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().unwrap().port()
}

/// Pids of live (not zombie) processes whose argv is exactly `argv`.
pub fn processes_running(argv: &[&str]) -> Vec<u32> {
    let mut wanted = Vec::new();
    for arg in argv {
        wanted.extend_from_slice(arg.as_bytes());
        wanted.push(0);
    }
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline == wanted && crate::support::alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// The parent of `pid`, from `/proc/<pid>/stat`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `pid`'s ancestors, nearest first, up to (not including) pid 1 or a vanished process.
pub fn ancestors(pid: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    let mut at = pid;
    while let Some(parent) = parent_of(at) {
        if parent <= 1 || chain.len() > 64 {
            break;
        }
        chain.push(parent);
        at = parent;
    }
    chain
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn keygen(path: &Path) -> Result<(), String> {
    output(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "procscript-test",
                "-f",
            ])
            .arg(path)
            .stdin(Stdio::null()),
    )
    .map(drop)
}

/// Writes `sshd_config` for `port`, without the optional settings this sshd rejects.
fn write_config(dir: &Path, port: u16, host_key: &Path, user: &str) -> Result<PathBuf, String> {
    let path = dir.join("sshd_config");
    let mut lines = vec![
        "ListenAddress 127.0.0.1".to_string(),
        format!("Port {port}"),
        format!("HostKey {}", host_key.display()),
        format!(
            "AuthorizedKeysFile {}",
            dir.join("authorized_keys").display()
        ),
        format!("PidFile {}", dir.join("sshd.pid").display()),
        format!("AllowUsers {user}"),
        "StrictModes no".into(),
        "UsePAM no".into(),
        "PermitRootLogin prohibit-password".into(),
        "PubkeyAuthentication yes".into(),
        "PasswordAuthentication no".into(),
        "KbdInteractiveAuthentication no".into(),
        "PrintMotd no".into(),
        "UseDNS no".into(),
        "MaxStartups 200".into(),
        "MaxSessions 50".into(),
        "PerSourcePenalties no".into(),
        "LogLevel INFO".into(),
    ];
    loop {
        std::fs::write(&path, lines.join("\n") + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let check = Command::new(SSHD)
            .args(["-t", "-f"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run {SSHD}: {e}"))?;
        if check.status.success() {
            return Ok(path);
        }
        let why = String::from_utf8_lossy(&check.stderr).into_owned();
        let before = lines.len();
        lines.retain(|l| !OPTIONAL.iter().any(|o| l.starts_with(o) && why.contains(o)));
        if lines.len() == before {
            return Err(format!("{SSHD} rejects its test configuration: {why}"));
        }
    }
}

/// Starts `sshd -D -e` on `config` and waits until it listens; its log is collected by a
/// thread for the server's whole life.
fn launch(config: &Path) -> Result<(Child, Arc<Mutex<String>>), String> {
    let mut command = Command::new(SSHD);
    command
        .args(["-D", "-e", "-f"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
    // which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            // Ends the server if the test thread that started it dies without dropping it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {SSHD}: {e}"))?;
    let log = Arc::new(Mutex::new(String::new()));
    let (ready_tx, ready_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Server listening on") {
                let _ = ready_tx.send(());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    match ready_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => Ok((child, log)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "{SSHD} did not start listening: {}",
                log.lock().unwrap()
            ))
        }
    }
}
