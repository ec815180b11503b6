//! Pool workers on other hosts, through OpenSSH: `Pool(#{ processes, hosts, ssh, procscript })`.
//!
//! A remote worker is `procscript worker` started by a local `ssh` process, under the same
//! remote wrapper as a remote command ([`crate::command::remote`]), so that it dies when the
//! connection goes. It speaks the pool's own protocol ([`super::protocol`]) over the ssh
//! channel: the local `ssh` gets one end of a socket pair as its stdin and stdout, so the
//! pool reads and writes a remote worker exactly as it does a forked one.
//!
//! # What travels
//!
//! A remote worker cannot inherit the script by fork, so it is sent the script first
//! ([`ScriptMsg`]): its name and text, its `ARGS`, its global constants that can travel,
//! where each closure is in the source, and the initializer. It compiles the text and runs
//! **none** of its statements (the lesson of Python's `spawn` start method): a task can call
//! the script's functions and closures, read `ARGS` and `global::NAME` for the global
//! constants defined when the pool was made, and nothing else of the script's state. Then
//! come tasks, exactly as to a forked worker: a function's name, a closure's captured values,
//! and the arguments, all through the codec that `Queue` and `Pipe` use, so only data
//! travels (`()`, booleans, numbers, strings, chars, blobs, arrays and maps). A lock, a
//! shared value, a queue, a manager's proxy, a socket or a process handle belongs to this
//! machine, and using one in a remote task is a `ValueError` in the caller.
//!
//! A closure's name (`anon$...`) is made from a hash that every process seeds at random, so
//! the worker's names for the script's closures are not the pool's: the pool sends where
//! each closure is in the source (its parameters and position), and the worker finds its
//! own name for each by that.
//!
//! # The channel
//!
//! The worker moves the channel off its standard streams before anything else: stdout
//! becomes its stderr (which ssh carries back to the script's stderr) and stdin
//! `/dev/null`, so a program a task runs cannot write into the protocol. A line a task
//! prints travels as a `print` message and comes out on the script's stdout. The worker
//! first writes [`HELLO`] with the protocol number and its version: what a login script
//! printed before it is skipped, and a worker of another protocol is refused clearly.
//!
//! # Failures
//!
//! A remote worker that dies after it started is buried as a forked one is (the call whose
//! task it ran fails) and replaced at the next pool call. One that never started (ssh could
//! not connect or log in, no `procscript` there, another protocol, a script that does not
//! compile there) is not replaced: its seat is given up, and the error (with ssh's own message, from ssh's log
//! as for remote commands) is raised in one call, the oldest waiting or else the next one,
//! once per host.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use rhai::{Array, Dynamic, Map, NativeCallContext, INT};

use super::func::Func;
use super::protocol::{ScriptMsg, HELLO, PROTOCOL};
use super::scheduler::Death;
use crate::command::remote::{command_line, ssh_argv, Remote, SshLog};
use crate::command::{Command, Stdio};
use crate::error::{Error, ErrorKind, Result};
use crate::ipc::{codec, pipe};
use crate::process::wait::Exit;
use crate::process::{Options, Process};

/// The host name that means "fork here", not ssh.
pub(crate) const LOCALHOST: &str = "localhost";

/// The program started on a remote host when the pool's options name none.
pub(crate) const DEFAULT_PROGRAM: &str = "procscript";

/// The most bytes a login may print before the worker's hello.
const MAX_NOISE: usize = 64 * 1024;

/// The native the worker's own statements call to serve; no script can reach it.
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
pub(crate) const SERVE: &str = "procscript_remote_worker_serve";

/// Where a remote worker runs: the ssh destination and options, and the program there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteHost {
    /// The ssh destination and the script's extra ssh arguments.
    pub remote: Remote,
    /// `procscript` on that host: a name looked up in the login's `PATH`, or a path.
    pub procscript: String,
}

/// Where a pool worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    /// Forked from the script (`"localhost"`, or no `hosts`).
    Local,
    /// `procscript worker` under ssh.
    Remote(Rc<RemoteHost>),
}

/// What the pool keeps of a remote worker besides its process: its host, ssh's log and
/// whether it has said hello.
pub(super) struct Link {
    pub host: Rc<RemoteHost>,
    log: Option<SshLog>,
    /// It wrote its hello: `procscript worker` started there.
    pub greeted: bool,
}

/// The text of the script `ctx` runs in, and its name.
fn script_source(ctx: &NativeCallContext) -> Result<(String, String)> {
    let missing = || {
        Error::value(
            "a Pool with remote hosts sends the script's source to them, and this code has no \
             source file (it was not run from a script file, `procscript run` or the REPL)",
        )
    };
    let name = ctx.call_source().ok_or_else(missing)?;
    let text = crate::diagnostic::source_text(name).ok_or_else(missing)?;
    Ok((name.to_string(), text.to_string()))
}

fn travels(value: &Dynamic) -> bool {
    codec::encode(value, &mut Vec::new()).is_ok()
}

/// Where a closure is, as both sides can compute it: its parameters (captured ones first)
/// and the start and end of its body in the source.
fn closure_place(def: &rhai::ScriptFuncDef) -> (Array, INT, INT, INT, INT) {
    let start = def.body.start_position();
    let end = def.body.end_position();
    let at = |p: Option<usize>| p.map_or(-1, |n| n as INT);
    (
        def.params
            .iter()
            .map(|p| Dynamic::from(p.clone()))
            .collect(),
        at(start.line()),
        at(start.position()),
        at(end.line()),
        at(end.position()),
    )
}

/// The script message for remote workers of a pool made in `ctx` (its `host` is filled in
/// for each worker). `Err` when the initializer's arguments cannot travel.
pub(super) fn script_message(
    ctx: &NativeCallContext,
    init: Option<&(Func, Array)>,
) -> Result<ScriptMsg> {
    let (name, source) = script_source(ctx)?;
    let args = ctx
        .engine()
        .eval_expression::<Array>("ARGS")
        .unwrap_or_default();
    let mut constants = Map::new();
    if let Some(shared) = &ctx.global_runtime_state().constants {
        for (key, value) in shared.borrow().iter() {
            if travels(value) {
                constants.insert(key.as_str().into(), value.clone());
            }
        }
    }
    let closures = ctx
        .iter_namespaces()
        .flat_map(|m| m.iter_script_fn_info())
        .filter(|f| f.2.starts_with("anon$"))
        .map(|f| {
            let (params, a, b, c, d) = closure_place(f.4);
            Dynamic::from_array(vec![
                f.2.into(),
                Dynamic::from_array(params),
                a.into(),
                b.into(),
                c.into(),
                d.into(),
            ])
        })
        .collect();
    let init = match init {
        None => Dynamic::UNIT,
        Some((func, initargs)) => {
            let value = Dynamic::from_array(vec![
                func.name.clone().into(),
                Dynamic::from_array(func.curry.clone()),
                Dynamic::from_array(initargs.clone()),
            ]);
            pipe::frame(&value, crate::convert::script_type_name).map_err(|e| {
                Error::value(format!(
                    "the initializer and `initargs` of a Pool with remote hosts travel to each \
                     host: {}; {}",
                    e.message, ONE_MACHINE
                ))
            })?;
            value
        }
    };
    Ok(ScriptMsg {
        protocol: PROTOCOL,
        name,
        source,
        host: String::new(),
        args,
        constants,
        closures,
        init,
    })
}

/// Why some values cannot go to a remote worker.
pub(super) const ONE_MACHINE: &str = "locks, shared values (`Value`, `Array`), queues, pipes, \
     managers' proxies, sockets and processes belong to this machine: a remote worker gets \
     data only";

/// Starts a remote worker on `host`: a local `ssh` running `procscript worker` there under
/// the remote wrapper, with one end of a new socket pair as its stdin and stdout. Returns
/// the process (a daemon, named `SshPoolWorker-N`), the pool's end and the link.
pub(super) fn spawn(host: &Rc<RemoteHost>) -> Result<(Process, OwnedFd, Link)> {
    let (parent_end, child_end) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::os("socketpair for a remote pool worker", e))?;
    let log = SshLog::new();
    let line = command_line(&[host.procscript.clone(), "worker".into()], None, None)?;
    let child_end = Rc::new(child_end);
    let mut command = Command::new(ssh_argv(&host.remote, line, log.as_ref()));
    command.stdin = Stdio::Fd(child_end.clone());
    command.stdout = Stdio::Fd(child_end);
    // Already the local ssh command: no `remote` for `process` to localize again.
    let process = crate::command::process(
        command.clone(),
        None,
        Options {
            daemon: Some(true),
            ..Options::default()
        },
    )?;
    process.set_name(process.name().replacen("Process", "SshPoolWorker", 1));
    process.take_job_for_start()?;
    crate::command::start(&process, &command)?;
    Ok((
        process,
        parent_end,
        Link {
            host: host.clone(),
            log,
            greeted: false,
        },
    ))
}

/// Looks for a remote worker's hello in `input` and takes it out, with whatever a login
/// script printed before it. `Ok(true)` once it came; `Err` with the reason when the
/// worker cannot be used (another protocol, too much else before it).
pub(super) fn take_hello(input: &mut Vec<u8>) -> std::result::Result<bool, String> {
    let found = input.windows(HELLO.len()).position(|w| w == HELLO);
    let Some(at) = found else {
        if input.len() > MAX_NOISE {
            return Err(format!(
                "its login wrote {} bytes on standard output before the worker started (a \
                 login script that prints there spoils the pool's channel): {:?}...",
                input.len(),
                String::from_utf8_lossy(&input[..80])
            ));
        }
        return Ok(false);
    };
    let rest = &input[at + HELLO.len()..];
    let Some(end) = rest.iter().position(|b| *b == b'\n') else {
        return if rest.len() > 200 {
            Err("its hello line never ended".into())
        } else {
            Ok(false)
        };
    };
    let line = String::from_utf8_lossy(&rest[..end]).into_owned();
    let mut words = line.split_whitespace();
    let protocol = words.next().unwrap_or("?");
    let version = words.next().unwrap_or("?");
    if protocol != PROTOCOL.to_string() {
        return Err(format!(
            "the procscript there (version {version}) speaks pool protocol {protocol}, and this \
             one (version {}) speaks {PROTOCOL}: install the same version on every host",
            env!("CARGO_PKG_VERSION")
        ));
    }
    input.drain(..at + HELLO.len() + end + 1);
    Ok(true)
}

/// What to say of how a remote worker ended, and the error's kind: refused by the other
/// side, ssh failed (`ConnectionError`), or the program ended (before or after it started).
fn how_it_ended(link: &Link, exit: Option<Exit>, refused: Option<&str>) -> (String, ErrorKind) {
    if let Some(reason) = refused {
        return (
            format!("could not start: {reason}"),
            ErrorKind::ProcessError,
        );
    }
    let ssh_failed = matches!(exit, Some(Exit::Code(255)))
        .then_some(link.log.as_ref())
        .flatten()
        .and_then(|log| crate::command::remote::ssh_failure(&log.text()));
    if let Some(message) = ssh_failed {
        let what = if link.greeted {
            "lost its ssh connection"
        } else {
            "could not start: ssh failed"
        };
        return (
            format!("{what} (exit status 255): {message}"),
            ErrorKind::ConnectionError,
        );
    }
    let (host, program) = (&link.host.remote.host, &link.host.procscript);
    let how = match exit {
        Some(Exit::Code(127)) if !link.greeted => format!(
            "could not start: `{program}` was not found on {host} (exit status 127; give \
             its path with the Pool's `procscript` option)"
        ),
        Some(Exit::Code(c)) if !link.greeted => format!(
            "ended with exit status {c} before it started (is `{program}` on {host} a \
             procscript with remote pool workers?)"
        ),
        Some(Exit::Code(c)) if c > 128 && c <= 128 + 64 => {
            match nix::sys::signal::Signal::try_from(c - 128) {
                Ok(s) => format!("was killed by {} on {host} (exit status {c})", s.as_str()),
                Err(_) => format!("ended with exit status {c} on {host}"),
            }
        }
        Some(Exit::Code(c)) => {
            format!("exited with code {c} (`exit()` in a task ends its worker)")
        }
        Some(Exit::Signal(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("ended: its ssh was killed by {}", s.as_str()),
            Err(_) => format!("ended: its ssh was killed by signal {sig}"),
        },
        None => "ended".into(),
    };
    (how, ErrorKind::ProcessError)
}

/// How a remote worker ended, for the scheduler: what to say, the error's kind, and
/// whether the failure must be reported in a call although no task ran there (a worker
/// that never started; `report` is false when this host's failure was already reported).
pub(super) fn death(
    process: &Process,
    link: &Link,
    exit: Option<Exit>,
    refused: Option<&str>,
    report: bool,
) -> Death {
    let host = &link.host.remote.host;
    let pid = process.pid().map_or_else(|| "?".into(), |p| p.to_string());
    let who = format!(
        "a remote pool worker ({} on {host}, ssh pid {pid})",
        process.name()
    );
    let (how, kind) = how_it_ended(link, exit, refused);
    let what = format!("{who} {how}");
    let exitcode = exit.map(Exit::exitcode);
    if link.greeted {
        return Death {
            kind,
            ..Death::new(what, exitcode, None)
        };
    }
    // It never started, so it ran nothing: its tasks go to other workers, and the call
    // learns why this host gave none.
    let error = report.then(|| {
        let mut map = Error::new(kind, what.clone()).to_map();
        map.insert(
            "exitcode".into(),
            exitcode.map_or(Dynamic::UNIT, Dynamic::from_int),
        );
        map
    });
    Death {
        kind,
        report: error,
        ..Death::new(what, exitcode, Some(0))
    }
}

/// The worker's names for the pool's closures: the pool's `[name, params, places...]`
/// matched with this process's closures at the same place.
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
pub(crate) fn closure_names(sent: &Array, ast: &rhai::AST) -> HashMap<String, String> {
    let mut mine: HashMap<String, Option<String>> = HashMap::new();
    for def in ast.iter_fn_def().filter(|d| d.name.starts_with("anon$")) {
        let key = format!("{:?}", closure_place(def));
        mine.entry(key)
            .and_modify(|e| *e = None)
            .or_insert_with(|| Some(def.name.to_string()));
    }
    let mut names = HashMap::new();
    for entry in sent {
        let Some(fields) = entry.read_lock::<Array>() else {
            continue;
        };
        let Ok([name, params, a, b, c, d]) = <[Dynamic; 6]>::try_from(fields.to_vec()) else {
            continue;
        };
        let (Some(params), Ok(a), Ok(b), Ok(c), Ok(d)) = (
            params.try_cast::<Array>(),
            a.as_int(),
            b.as_int(),
            c.as_int(),
            d.as_int(),
        ) else {
            continue;
        };
        let key = format!("{:?}", (params, a, b, c, d));
        if let Some(Some(local)) = mine.get(&key) {
            names.insert(name.to_string(), local.clone());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_found_after_a_login_s_noise() {
        let mut input = b"Welcome to node1\n".to_vec();
        assert_eq!(take_hello(&mut input), Ok(false));
        input.extend_from_slice(HELLO);
        input.extend_from_slice(format!("{PROTOCOL} 9.9").as_bytes());
        assert_eq!(take_hello(&mut input), Ok(false), "not a whole line yet");
        input.extend_from_slice(b"\nREST");
        assert_eq!(take_hello(&mut input), Ok(true));
        assert_eq!(input, b"REST");
    }

    #[test]
    fn another_protocol_or_endless_noise_is_refused() {
        let mut input = HELLO.to_vec();
        input.extend_from_slice(b"999 0.0.1\n");
        let err = take_hello(&mut input).unwrap_err();
        assert!(
            err.contains("protocol 999") && err.contains("same version"),
            "{err}"
        );
        let mut noise = vec![b'x'; MAX_NOISE + 1];
        assert!(take_hello(&mut noise).unwrap_err().contains("login script"));
    }

    #[test]
    fn closures_are_matched_by_their_place_not_their_name() {
        let engine = rhai::Engine::new();
        let source = "let k = 2;\nlet f = |x| x * k;\nlet g = |x| x * k;\nfn named(a) { a }\n";
        let one = engine.compile(source).unwrap();
        let two = engine.compile(source).unwrap();
        let sent: Array = one
            .iter_fn_def()
            .filter(|d| d.name.starts_with("anon$"))
            .map(|d| {
                let (params, a, b, c, e) = closure_place(d);
                Dynamic::from_array(vec![
                    d.name.to_string().into(),
                    Dynamic::from_array(params),
                    a.into(),
                    b.into(),
                    c.into(),
                    e.into(),
                ])
            })
            .collect();
        assert_eq!(sent.len(), 2);
        let names = closure_names(&sent, &two);
        assert_eq!(names.len(), 2, "{names:?}");
        let theirs: Vec<String> = two.iter_fn_def().map(|d| d.name.to_string()).collect();
        for (pool, local) in &names {
            assert!(theirs.contains(local), "{pool} -> {local}");
        }
        // Two closures, two different names there.
        let locals: std::collections::HashSet<&String> = names.values().collect();
        assert_eq!(locals.len(), 2);
    }
}
