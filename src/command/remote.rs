//! Programs on other hosts through OpenSSH: `run(argv, #{ host })`, a pipeline stage with
//! `host`, `Process(#{ command, host })`.
//!
//! procscript invents no daemon, authentication or encryption of its own: a remote command is
//! a local `ssh` process, started by the same fork and exec as any program, so its streams,
//! timeout, `terminate()` and reaping are those of a local command. This module only builds
//! that `ssh` command line, and reads what ssh says about its own failures.
//!
//! # What runs on the host
//!
//! ssh hands the remote side one string, which the user's login shell runs. That string is
//! `exec /bin/sh -c WRAPPER procscript CWD ENV PROGRAM [NAME=VALUE...] ARGS...`: the fixed
//! POSIX script [`WRAPPER`] and then every value as its own word, each quoted by [`quote`]
//! (single quotes, `'\''` for a quote inside), so the program receives exactly the argv the
//! script gave: no word splitting, no globbing, no expansion, no injection. The login shell must be a POSIX
//! one (sh, bash, dash, zsh, ksh), as for Ansible; csh and fish quote differently.
//!
//! The wrapper changes to `cwd` and runs the program under `env -i` when `env` was given
//! (the map is then its whole environment, as locally), waits for it, and exits with its
//! code (128 + N when signal N ended it, as a shell reports it: ssh carries exit codes, not
//! signals).
//!
//! # Ending the remote program
//!
//! Without a terminal, sshd sends no signal to a command when its client goes away: the
//! command only finds its stdin at end of file and its stdout closed, and a program that
//! does not read or write (`sleep`) runs on. `ssh -tt` would make the hang-up a SIGHUP, but a
//! pseudo-terminal merges stdout with stderr, turns `\n` into `\r\n`, echoes stdin and
//! interprets control bytes in it: the streams would no longer behave as locally.
//!
//! So the wrapper starts a watcher next to the program (the way GNU parallel's remote
//! wrapper does): sshd starts the login shell as a session and process-group leader, and the
//! shell execs `/bin/sh`, so the sshd process that serves the connection is the wrapper's
//! parent and the program, its children and the watcher all share one process group. The
//! watcher checks once a second that this sshd is still there; sshd exits as soon as the
//! connection closes, which happens when the local ssh ends for any reason (`terminate()`,
//! `kill()`, a timeout's SIGKILL, procscript itself killed). The watcher then sends SIGTERM to
//! the whole group, and SIGKILL two seconds later. The program keeps its stdin: the watcher
//! reads nothing. When the program ends first, the wrapper kills the watcher.
//!
//! Connection sharing (`ControlMaster`/`ControlPath`) would keep that sshd alive after the
//! local ssh ended, so every remote command gets `-o ControlPath=none`, after the script's
//! own `ssh` options so that a script can still choose otherwise (and lose that guarantee).
//!
//! # ssh's failures versus the program's exit code
//!
//! ssh exits 255 when it fails (no connection, no authentication, connection lost), and also
//! when the remote program exits 255. For `run` and `pipeline`, ssh's own log goes to a
//! separate file ([`SshLog`], `ssh -E`) at level DEBUG1, where ssh writes
//! `rtype exit-status` when the remote exit status arrives. A code of 255 with that line is
//! the program's own; without it, ssh failed, and the non-debug lines of the log are ssh's
//! own message for the error.

use std::borrow::Cow;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use nix::sys::memfd::{memfd_create, MFdFlags};

use super::Command;
use crate::error::{Error, ErrorKind, Result};

/// The program that carries remote commands.
pub(crate) const SSH: &str = "ssh";

/// The longest remote command line: Linux's limit on one argument (`MAX_ARG_STRLEN`, 32
/// pages) less its terminating NUL, since the login shell receives the line as one argument.
pub(crate) const MAX_COMMAND_LINE: usize = 32 * 4096 - 1;

/// The remote wrapper, a POSIX `sh` script run as `sh -c WRAPPER procscript CWD ENV PROGRAM
/// [NAME=VALUE...] ARGS...`:
/// - `CWD`: the directory to run in, or empty;
/// - `ENV`: `-` to keep the session's environment, else the number `N` of `NAME=VALUE`
///   words that follow `PROGRAM` and make up the program's whole environment (`env -i`),
///   with a `p` appended (`2p`) when the program must first be looked up in the session's
///   `PATH` (the map has no `PATH` of its own);
/// - then the program and its arguments.
///
/// A `cwd` that does not exist ends it with 127 ([`super::EXEC_FAILED_CODE`], as for a local
/// command that cannot start), and so does a program that cannot be found (as in a shell).
///
/// The command is assembled for `eval` from positional-parameter references only
/// (`"${1}" "${2}" "$p"`), never from the values themselves, so `eval` expands nothing a
/// script wrote. It runs in the foreground (a background job of a non-interactive shell
/// would start with SIGINT and SIGQUIT ignored, and no stdin), in a subshell that execs it,
/// while the wrapper's own stderr is `/dev/null`: a shell reports a foreground job killed by
/// a signal ("Killed") on its stderr, which is not the program's. See the module
/// documentation for the watcher.
pub(crate) const WRAPPER: &str = r#"d=$1 n=$2 p=$3; shift 3
if [ -n "$d" ]; then cd -- "$d" || exit 127; fi
case $n in
-) c='"$p" "$@"' ;;
*) case $n in *p) n=${n%p}
     case $p in */*) ;; *) q=$(command -v -- "$p") && case $q in /*) p=$q ;; esac ;; esac ;;
   esac
   c='env -i --' i=0
   while [ $i -lt $n ]; do i=$((i+1)); c="$c \"\${$i}\""; done
   c="$c \"\$p\""
   while [ $i -lt $# ]; do i=$((i+1)); c="$c \"\${$i}\""; done ;;
esac
(trap '' TERM; while kill -0 $PPID 2>/dev/null; do sleep 1; done
 kill -TERM 0; sleep 2; kill -KILL 0) </dev/null >/dev/null 2>&1 &
w=$!
exec 4>&2 2>/dev/null
(eval "exec $c 2>&4 4>&-")
s=$?
kill -KILL $w
exit $s
"#;

/// Where a command runs when it is not here: an ssh destination and extra ssh arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    /// `host`, `user@host`, an alias of `~/.ssh/config`, or `ssh://user@host:port`.
    pub host: String,
    /// Arguments given to `ssh` before the destination (`["-p", "2222"]`).
    pub ssh: Vec<String>,
}

impl Remote {
    /// A checked destination: not empty, no spaces or control characters, and no leading
    /// `-` (which ssh would read as an option).
    pub(crate) fn new(host: String, ssh: Vec<String>) -> Result<Self> {
        if host.is_empty() {
            return Err(Error::value("`host` must not be empty"));
        }
        if host.starts_with('-') {
            return Err(Error::value(format!(
                "`host` must not start with `-` (ssh would read {host:?} as an option)"
            )));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::value(format!(
                "`host` must not contain spaces or control characters: {host:?}"
            )));
        }
        Ok(Self { host, ssh })
    }
}

/// `word` quoted for a POSIX shell, so that the shell reads it back as exactly one word,
/// unchanged, in any position: words made only of letters, digits and `@%+:,./-_` stay as
/// they are, anything else (including the empty word) is wrapped in single quotes, inside
/// which a single quote is written `'\''` (close, escaped quote, reopen). Nothing is special
/// between single quotes, newlines included.
pub(crate) fn quote(word: &str) -> Cow<'_, str> {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+:,./-_".contains(&b));
    if plain {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// The line the remote login shell runs for `argv` in `cwd` with `env` (see [`WRAPPER`]).
pub(crate) fn command_line(
    argv: &[String],
    cwd: Option<&str>,
    env: Option<&[(String, String)]>,
) -> Result<String> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::value(
            "a command needs at least a program name: [\"prog\", \"arg\", ...]",
        ));
    };
    if program.is_empty() {
        return Err(Error::value("the program name must not be empty"));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(Error::value(
            "a command argument must not contain a NUL character",
        ));
    }
    let mut words: Vec<String> = vec![cwd.unwrap_or("").to_string()];
    let mut assignments = Vec::new();
    match env {
        None => words.push("-".into()),
        Some(env) => {
            if program.contains('=') {
                return Err(Error::value(format!(
                    "with `env`, a remote program's name must not contain `=` (`env` would read {program:?} as a variable)"
                )));
            }
            let mut has_path = false;
            for (key, value) in env {
                if key.is_empty() || key.contains('=') || key.contains('\0') {
                    return Err(Error::value(format!(
                        "bad environment variable name `{key}`"
                    )));
                }
                if value.contains('\0') {
                    return Err(Error::value(
                        "an environment variable must not contain a NUL character",
                    ));
                }
                has_path |= key == "PATH";
                assignments.push(format!("{key}={value}"));
            }
            let lookup = if has_path || program.contains('/') {
                ""
            } else {
                "p"
            };
            words.push(format!("{}{lookup}", env.len()));
        }
    }
    if cwd.is_some_and(|c| c.contains('\0')) {
        return Err(Error::value("`cwd` must not contain a NUL character"));
    }
    words.push(program.clone());
    words.extend(assignments);
    words.extend(args.iter().cloned());
    let mut line = format!("exec /bin/sh -c {} procscript", quote(WRAPPER));
    for word in &words {
        line.push(' ');
        line.push_str(&quote(word));
    }
    if line.len() > MAX_COMMAND_LINE {
        return Err(Error::value(format!(
            "the remote command line is {} bytes, more than the {MAX_COMMAND_LINE} a remote \
             shell accepts as one argument: send large data through `input` or stdin instead",
            line.len()
        )));
    }
    Ok(line)
}

/// The local argv that runs `line` on `remote`: `ssh -T [log options] [the script's ssh
/// arguments] -o ControlPath=none [-E log] -- host line`.
///
/// The order matters: for `-o` settings ssh keeps the first value it reads, for `-E` the
/// last. `LogLevel=DEBUG1` comes first so that the log shows whether an exit status arrived
/// even when the script's arguments set another level (`-v` and `-q` still win: they are
/// flags, not settings); `ControlPath=none` comes after the script's arguments, which may
/// override it.
pub(crate) fn ssh_argv(remote: &Remote, line: String, log: Option<&SshLog>) -> Vec<String> {
    let mut argv = vec![SSH.to_string(), "-T".into()];
    if log.is_some() {
        argv.extend(["-o".into(), "LogLevel=DEBUG1".into()]);
    }
    argv.extend(remote.ssh.iter().cloned());
    argv.extend(["-o".into(), "ControlPath=none".into()]);
    if let Some(log) = log {
        argv.extend(["-E".into(), log.path()]);
    }
    argv.extend(["--".into(), remote.host.clone(), line]);
    argv
}

/// The `ssh` command to start on this machine to run `command` on `remote`'s host. The local
/// ssh keeps procscript's environment and directory (`env` and `cwd` apply on the remote
/// side) and gets the command's streams.
pub(crate) fn localize(
    command: &Command,
    remote: &Remote,
    log: Option<&SshLog>,
) -> Result<Command> {
    let line = command_line(
        &command.argv,
        command.cwd.as_deref(),
        command.env.as_deref(),
    )?;
    let mut local = Command::new(ssh_argv(remote, line, log));
    local.stdin = command.stdin.clone();
    local.stdout = command.stdout.clone();
    local.stderr = command.stderr.clone();
    Ok(local)
}

/// How a command is named in messages: `prog`, or `host:prog` for a remote one.
pub(crate) fn label(command: &Command, remote: Option<&Remote>) -> String {
    match remote {
        Some(remote) => format!("{}:{}", remote.host, command.program()),
        None => command.program().to_string(),
    }
}

/// The argv of `command` for a trace, `host: prog args` for a remote one (its `ssh`
/// command line, with the wrapper, would drown the timeline).
pub(crate) fn trace_label(command: &Command, remote: Option<&Remote>) -> String {
    match remote {
        Some(remote) => format!("{}: {}", remote.host, command.argv.join(" ")),
        None => command.argv.join(" "),
    }
}

/// ssh's own log for one remote command (`ssh -E`), in an anonymous memory file: ssh opens
/// it by its `/proc` path while procscript holds it, so nothing is left on disk and no
/// descriptor has to be passed through the exec.
pub(crate) struct SshLog {
    file: File,
    path: String,
}

impl SshLog {
    /// A log for a remote command, if it can be made; `None` otherwise (no `/proc`: ssh's
    /// messages then stay on its stderr, and a code of 255 is reported as it is).
    pub(crate) fn new() -> Option<Self> {
        let fd = memfd_create("procscript-ssh-log", MFdFlags::MFD_CLOEXEC).ok()?;
        let path = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
        std::fs::metadata(&path).ok()?;
        Some(Self {
            file: File::from(fd),
            path,
        })
    }

    /// The path ssh opens.
    pub(crate) fn path(&self) -> String {
        self.path.clone()
    }

    /// What ssh wrote so far.
    pub(crate) fn text(&self) -> String {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match self.file.read_at(&mut chunk, bytes.len() as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The error for a remote command `what` (`host:prog`) that ended with `code`, if ssh
    /// itself failed (see the module documentation); `None` when the code is the remote
    /// program's.
    pub(crate) fn failure(&self, code: i64, what: &str) -> Option<Error> {
        if code != 255 {
            return None;
        }
        let text = self.text();
        ssh_failure(&text).map(|message| {
            Error::new(
                ErrorKind::ConnectionError,
                format!("ssh failed to run `{what}` (exit status 255): {message}"),
            )
        })
    }
}

/// ssh's message if its log `text` says it failed: `None` when the remote exit status
/// arrived. The message is the log without its debug lines and ssh's informational chatter.
pub(crate) fn ssh_failure(text: &str) -> Option<String> {
    if text.contains("rtype exit-status") {
        return None;
    }
    const CHATTER: [&str; 4] = [
        "Warning: Permanently added",
        "Authenticated to",
        "Transferred: sent",
        "Bytes per second:",
    ];
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("debug"))
        .filter(|l| !CHATTER.iter().any(|c| l.starts_with(c)))
        .collect();
    Some(if lines.is_empty() {
        "the connection ended before the remote program's exit status came back".to_string()
    } else {
        lines.join("; ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words no shell may change: spaces, quotes, expansions, separators, globs, escapes,
    /// comments, tildes, assignments, options, newlines, non-ASCII, the empty word.
    const NASTY: &[&str] = &[
        "",
        " ",
        "two words",
        "it's",
        "'",
        "''",
        "\"double\"",
        "$HOME",
        "${HOME}",
        "$(touch /tmp/procscript-pwned)",
        "`touch /tmp/procscript-pwned`",
        "a; echo injected",
        "a && b || c",
        "a | b",
        "> file",
        "back\\slash",
        "\\'",
        "*",
        "/*",
        "?",
        "[a-z]",
        "{a,b}",
        "~",
        "~root",
        "#comment",
        "A=1",
        "-n",
        "--",
        "line\nbreak",
        "\n",
        "tab\there",
        "!history",
        "é ü 日本",
        "%s",
    ];

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("/usr/bin/env"), "/usr/bin/env");
        assert_eq!(quote("user@host:22,a.b-c_d+%"), "user@host:22,a.b-c_d+%");
    }

    #[test]
    fn other_words_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("'"), r"''\'''");
        assert_eq!(quote("$x"), "'$x'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote("A=1"), "'A=1'");
        assert_eq!(quote("~"), "'~'");
    }

    /// Runs `sh -c script` and returns its stdout.
    fn sh(script: &str) -> (String, i32) {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            String::from_utf8(out.stdout).unwrap(),
            out.status.code().unwrap_or(-1),
        )
    }

    #[test]
    fn a_shell_reads_every_quoted_word_back_unchanged() {
        let mut script = String::from("printf '%s\\0'");
        for word in NASTY {
            script.push(' ');
            script.push_str(&quote(word));
        }
        let (out, code) = sh(&script);
        assert_eq!(code, 0);
        let words: Vec<&str> = out.split('\0').collect();
        assert_eq!(&words[..words.len() - 1], NASTY);
        assert!(!std::path::Path::new("/tmp/procscript-pwned").exists());
    }

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The remote line, run by a local `sh` standing in for the login shell.
    fn remote(argv: &[&str], cwd: Option<&str>, env: Option<&[(&str, &str)]>) -> (String, i32) {
        let env: Option<Vec<(String, String)>> = env.map(|e| {
            e.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        sh(&command_line(&words(argv), cwd, env.as_deref()).unwrap())
    }

    #[test]
    fn the_wrapper_passes_argv_unchanged() {
        let mut argv = vec!["printf", "%s\\0"];
        argv.extend(NASTY);
        let (out, code) = remote(&argv, None, None);
        assert_eq!(code, 0);
        let got: Vec<&str> = out.split('\0').collect();
        assert_eq!(&got[..got.len() - 1], NASTY);
    }

    #[test]
    fn the_wrapper_applies_cwd_and_the_whole_env() {
        let (out, code) = remote(
            &["sh", "-c", "pwd; echo \"$A|$B|${HOME-unset}\""],
            Some("/"),
            Some(&[("A", "x y"), ("B", "it's $HOME\nz")]),
        );
        assert_eq!(code, 0);
        assert_eq!(out, "/\nx y|it's $HOME\nz|unset\n");
        // Nothing but the map: `env` prints exactly it (the program was found in the
        // session's PATH, since the map has none).
        let (out, _) = remote(&["env"], None, Some(&[("ONLY", "1")]));
        assert_eq!(out, "ONLY=1\n");
        // With a PATH in the map, the program is looked up there.
        let (out, code) = remote(&["env"], None, Some(&[("PATH", "/nonexistent")]));
        assert_eq!((out.as_str(), code), ("", 127));
        // A cwd with every awkward character.
        let dir = std::env::temp_dir().join("procscript remote 'cwd' $x\n;*");
        std::fs::create_dir_all(&dir).unwrap();
        let (out, code) = remote(&["pwd"], dir.to_str(), None);
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!((out, code), (format!("{}\n", dir.display()), 0));
    }

    #[test]
    fn the_wrapper_reports_exit_codes_as_a_shell_does() {
        assert_eq!(remote(&["sh", "-c", "exit 3"], None, None).1, 3);
        assert_eq!(remote(&["sh", "-c", "exit 255"], None, None).1, 255);
        assert_eq!(remote(&["sh", "-c", "kill -9 $$"], None, None).1, 128 + 9);
        assert_eq!(remote(&["no-such-program-x"], None, None).1, 127);
        assert_eq!(remote(&["true"], Some("/no/such/dir"), None).1, 127);
    }

    #[test]
    fn stderr_is_the_program_s_alone() {
        let line = command_line(
            &words(&["sh", "-c", "echo own >&2; kill -9 $$"]),
            None,
            None,
        )
        .unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(128 + 9));
        // Not the shell's "Killed" report: only what the program wrote.
        assert_eq!(String::from_utf8_lossy(&out.stderr), "own\n");
    }

    #[test]
    fn the_program_starts_with_the_signals_and_descriptors_of_a_local_one() {
        let status = "grep -E '^Sig(Ign|Blk)' /proc/self/status; ls /proc/self/fd | wc -l";
        let direct = sh(status);
        let wrapped = remote(&["sh", "-c", status], None, None);
        assert_eq!(wrapped, direct);
    }

    #[test]
    fn stdin_reaches_the_program() {
        let line = command_line(&words(&["cat"]), None, None).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf 'in\\n' | {line}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "in\n");
    }

    #[test]
    fn bad_commands_are_refused() {
        let err = |argv: &[&str], env: Option<&[(String, String)]>| {
            command_line(&words(argv), None, env).unwrap_err().message
        };
        assert!(err(&[], None).contains("at least a program"));
        assert!(err(&[""], None).contains("must not be empty"));
        assert!(err(&["a\0b"], None).contains("NUL"));
        let env = [("A=B".to_string(), "1".to_string())];
        assert!(err(&["true"], Some(&env)).contains("bad environment variable name"));
        assert!(err(&["x=y"], Some(&[])).contains("must not contain `=`"));
        let huge = "x".repeat(MAX_COMMAND_LINE);
        assert!(err(&["echo", &huge], None).contains("more than"));
    }

    #[test]
    fn hosts_are_checked() {
        assert!(Remote::new("node1".into(), vec![]).is_ok());
        assert!(Remote::new("user@node-2.example".into(), vec![]).is_ok());
        for bad in ["", "-oProxyCommand=x", "a b", "a\nb"] {
            assert_eq!(
                Remote::new(bad.into(), vec![]).unwrap_err().kind,
                ErrorKind::ValueError,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ssh_options_come_in_the_order_ssh_reads_them() {
        let remote = Remote::new("n1".into(), words(&["-p", "2222"])).unwrap();
        let argv = ssh_argv(&remote, "LINE".into(), None);
        assert_eq!(
            argv,
            words(&[
                "ssh",
                "-T",
                "-p",
                "2222",
                "-o",
                "ControlPath=none",
                "--",
                "n1",
                "LINE"
            ])
        );
    }

    #[test]
    fn ssh_failures_are_told_from_exit_statuses() {
        let refused = "debug1: Connecting to 127.0.0.1 [127.0.0.1] port 1.\r\n\
                       ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n";
        assert_eq!(
            ssh_failure(refused).unwrap(),
            "ssh: connect to host 127.0.0.1 port 1: Connection refused"
        );
        let denied = "Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.\r\n\
                      debug1: No more authentication methods to try.\r\n\
                      root@127.0.0.1: Permission denied (publickey).\r\n";
        assert_eq!(
            ssh_failure(denied).unwrap(),
            "root@127.0.0.1: Permission denied (publickey)."
        );
        let exited = "Authenticated to 127.0.0.1 ([127.0.0.1]:2222) using \"publickey\".\r\n\
                      debug1: client_input_channel_req: channel 0 rtype exit-status reply 0\r\n";
        assert_eq!(ssh_failure(exited), None);
        let lost = "Authenticated to 127.0.0.1 ([127.0.0.1]:2222) using \"publickey\".\r\n";
        assert!(ssh_failure(lost).unwrap().contains("connection ended"));
    }
}
