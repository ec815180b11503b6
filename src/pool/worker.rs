//! The worker side of a pool: read a task, call its function on each item, reply; until the
//! input ends.
//!
//! [`serve`] speaks the protocol ([`super::protocol`]) over any pair of descriptors, a
//! socket or two pipes, and calls functions through a [`Caller`]. A forked worker
//! ([`main`]) uses its end of a socket pair and the script context it inherited; a worker
//! on another host (`procscript worker`, see [`super::remote`]) uses its stdin and stdout,
//! and the context of the script's source compiled there.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::board::{Board, Notices, SlotNotices};
use super::func::Func;
use super::protocol::{ReplyMsg, TaskMsg};
use crate::error::{Error, ErrorKind};
use crate::ipc::{codec, pipe};

/// How a call in a task ended, when it did not return a value.
pub(crate) enum Outcome {
    /// It raised an error: the catchable map to send back.
    Failed(Map),
    /// It called `exit(n)`: the worker ends with `n`.
    Exit(i32),
}

/// Calls the functions that tasks name.
pub(crate) trait Caller {
    /// Calls `name` with `curry` and then `args`; `role` says what for in an error's
    /// message ("a pool task", "the pool's initializer").
    fn call(
        &mut self,
        name: &str,
        curry: &[Dynamic],
        args: Array,
        role: &str,
    ) -> Result<Dynamic, Outcome>;
    /// Maps a Rust type name to the one scripts see.
    fn type_name(&self, rust: &str) -> String;
    /// A new task begins: its function's captured values may differ from the last one's.
    fn new_task(&mut self) {}
}

/// The two directions of a worker's channel to its pool.
pub(crate) struct Channel<'a> {
    /// Tasks come in here.
    pub input: BorrowedFd<'a>,
    /// Replies go out here.
    pub output: BorrowedFd<'a>,
}

fn is_socket(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|s| {
        nix::sys::stat::SFlag::from_bits_truncate(s.st_mode)
            .contains(nix::sys::stat::SFlag::S_IFSOCK)
    })
}

/// Serves tasks until the input ends (the pool closed it, or the parent went) or a task
/// calls `exit(n)`; returns the worker's exit code. Runs `init` first: if it fails, says so
/// and ends with 1.
pub(crate) fn serve(
    caller: &mut dyn Caller,
    channel: Channel<'_>,
    notices: &dyn Notices,
    init: Option<(Func, Array)>,
) -> i32 {
    let socket = is_socket(channel.output);
    let send = |caller: &dyn Caller, reply: ReplyMsg| -> crate::error::Result<()> {
        pipe::with_message(
            &reply.into_value(),
            |t| caller.type_name(t),
            |pieces| pipe::write_pieces(channel.output, pieces, socket, "the pool's reply channel"),
        )
    };
    if let Some((func, args)) = init {
        match caller.call(&func.name, &func.curry, args, "the pool's initializer") {
            Ok(_) => {}
            Err(Outcome::Exit(code)) => return code,
            Err(Outcome::Failed(error)) => {
                let _ = send(caller, ReplyMsg::InitFailed { error });
                return 1;
            }
        }
    }
    loop {
        let message =
            match pipe::read_message(channel.input, "the pool's task channel", || {}, &mut |_| {
                Ok(true)
            }) {
                Ok(Some(message)) => message,
                _ => return 0,
            };
        let Ok(task) = TaskMsg::from_value(message) else {
            return 0;
        };
        notices.started();
        let (job, index) = (task.job, task.index);
        let reply = match run_task(caller, task, notices) {
            Ok(Some(values)) => ReplyMsg::Done { job, index, values },
            Ok(None) => ReplyMsg::Skipped { job, index },
            Err(Outcome::Failed(error)) => ReplyMsg::Failed { job, index, error },
            Err(Outcome::Exit(code)) => return code,
        };
        match send(caller, reply) {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::ValueError => {
                // A result that cannot travel: say so instead.
                let error = Error::value(format!(
                    "a pool task's result cannot be sent back: {}",
                    e.message
                ))
                .to_map();
                if send(caller, ReplyMsg::Failed { job, index, error }).is_err() {
                    return 0;
                }
            }
            Err(_) => return 0,
        }
    }
}

/// Runs each item of a task; `Ok(None)` when the job was cancelled before it finished.
fn run_task(
    caller: &mut dyn Caller,
    task: TaskMsg,
    notices: &dyn Notices,
) -> Result<Option<Array>, Outcome> {
    let mut results = Array::with_capacity(task.items.len());
    caller.new_task();
    for (i, item) in task.items.into_iter().enumerate() {
        if notices.cancelled(task.job, task.index + i) {
            return Ok(None);
        }
        let args = if task.star {
            item.try_cast::<Array>().unwrap_or_default()
        } else {
            vec![item]
        };
        results.push(caller.call(&task.function, &task.curry, args, "a pool task")?);
    }
    Ok(Some(results))
}

/// The body of a forked worker: serves on its end of the socket pair, calling functions
/// in the script context it inherited.
pub(super) fn main(
    ctx: &NativeCallContext,
    fd: &OwnedFd,
    board: Board,
    slot: usize,
    init: Option<(Func, Array)>,
) -> i32 {
    let mut caller = ContextCaller::new(ctx);
    let channel = Channel {
        input: fd.as_fd(),
        output: fd.as_fd(),
    };
    serve(&mut caller, channel, &SlotNotices { board, slot }, init)
}

/// Calls through a script context: the one a forked worker inherited, or the one a remote
/// worker made from the script's source.
pub(crate) struct ContextCaller<'a, 'b> {
    ctx: &'a NativeCallContext<'b>,
    source: Option<String>,
    /// The function of the current task: its name, curry length, arity and pointer (with
    /// the task's curry).
    cache: Option<(String, usize, usize, FnPtr)>,
    /// A remote worker's: the host as the pool names it, and the pool's closure names
    /// with this process's name for each.
    remote: Option<(String, HashMap<String, String>)>,
}

impl<'a, 'b> ContextCaller<'a, 'b> {
    /// Calls functions of `ctx`'s script.
    pub(super) fn new(ctx: &'a NativeCallContext<'b>) -> Self {
        Self {
            ctx,
            source: ctx.call_source().map(str::to_string),
            cache: None,
            remote: None,
        }
    }

    /// Calls functions of `ctx`'s script for a pool on another host, known there as
    /// `host`, whose closure names become the ones of `closures`.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
    pub(crate) fn remote(
        ctx: &'a NativeCallContext<'b>,
        host: String,
        closures: HashMap<String, String>,
    ) -> Self {
        Self {
            remote: Some((host, closures)),
            ..Self::new(ctx)
        }
    }

    fn resolve(&self, name: &str, arity: usize) -> Option<FnPtr> {
        let found = self
            .ctx
            .iter_namespaces()
            .flat_map(|m| m.iter_script_fn_info())
            .find(|f| f.2 == name && f.3 == arity)
            .map(|f| FnPtr::from(f.4.clone()));
        found.or_else(|| FnPtr::new(name).ok())
    }
}

impl Caller for ContextCaller<'_, '_> {
    fn call(
        &mut self,
        name: &str,
        curry: &[Dynamic],
        args: Array,
        role: &str,
    ) -> Result<Dynamic, Outcome> {
        let arity = curry.len() + args.len();
        let translated = self
            .remote
            .as_ref()
            .and_then(|(_, closures)| closures.get(name).cloned());
        let name = translated.as_deref().unwrap_or(name);
        let remote = self.remote.is_some();
        let cached = matches!(&self.cache, Some((n, c, a, _)) if n == name && *c == curry.len() && *a == arity);
        if !cached {
            let Some(mut f) = self.resolve(name, arity) else {
                return Err(Outcome::Failed(not_found(name, arity, remote)));
            };
            f.set_curry(curry.iter().cloned());
            self.cache = Some((name.to_string(), curry.len(), arity, f));
        }
        let (.., func) = self.cache.as_ref().expect("resolved above");
        match func.call_within_context::<Dynamic>(self.ctx, args) {
            Ok(value) => Ok(value),
            Err(err) => {
                if let Some(code) = crate::process::package::exit_request(&err) {
                    return Err(Outcome::Exit(code));
                }
                if let EvalAltResult::ErrorFunctionNotFound(sig, _) = &*err {
                    if sig.starts_with(&format!("{name} (")) || sig == name {
                        return Err(Outcome::Failed(not_found(name, arity, remote)));
                    }
                }
                let role = match &self.remote {
                    Some((host, _)) => format!("{role} on {host}"),
                    None => role.to_string(),
                };
                Err(Outcome::Failed(task_error(
                    &err,
                    self.source.as_deref(),
                    &role,
                )))
            }
        }
    }

    fn type_name(&self, rust: &str) -> String {
        crate::convert::script_type_name(rust)
    }

    fn new_task(&mut self) {
        // The cache keeps the function with the last task's captured values: right for
        // every item of one task, wrong for the next task (`|x| x * k` sent again with
        // another `k`).
        self.cache = None;
    }
}

fn not_found(name: &str, arity: usize, remote: bool) -> Map {
    let shown = if name.starts_with("anon$") {
        "the closure".to_string()
    } else {
        format!("`{name}`")
    };
    let arguments = if arity == 1 { "argument" } else { "arguments" };
    let why = if remote {
        "a remote worker knows the functions and closures written in the script's source \
         (not those of an `eval`, a module or a later REPL input)"
    } else {
        "a worker knows the functions and closures that existed when it was forked (one \
         defined in a later REPL input is not among them: make a new Pool)"
    };
    Error::process(format!(
        "the pool's workers cannot find {shown} with {arity} {arguments}: {why}"
    ))
    .to_map()
}

/// The catchable map for a task's error: the task's own kind when it raised a procscript
/// error, `ProcessError` otherwise; the message says where in the task it happened.
fn task_error(err: &EvalAltResult, source: Option<&str>, role: &str) -> Map {
    let located = crate::diagnostic::Diagnostic::of(err, source);
    let mut inner = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, e, _) = inner {
        inner = e;
    }
    let (kind, message, thrown) = match inner {
        EvalAltResult::ErrorRuntime(value, _) => match Error::kind_and_message(value) {
            Some((kind, message)) => (kind, message, value.clone()),
            None if value.is_string() => {
                ("ProcessError".to_string(), value.to_string(), value.clone())
            }
            None => (
                "ProcessError".to_string(),
                located.message.clone(),
                value.clone(),
            ),
        },
        _ => (
            "ProcessError".to_string(),
            located.message.clone(),
            Dynamic::UNIT,
        ),
    };
    let line = located.position.line();
    let place = match (&located.source, line) {
        (Some(file), Some(line)) => format!(" (in {role}, at {file}:{line})"),
        (None, Some(line)) => format!(" (in {role}, at line {line})"),
        _ => format!(" (in {role})"),
    };
    let mut map = Map::new();
    map.insert("kind".into(), kind.into());
    map.insert("message".into(), format!("{message}{place}").into());
    map.insert(
        "line".into(),
        line.map_or(Dynamic::UNIT, |l| Dynamic::from_int(l as i64)),
    );
    let mut probe = Vec::new();
    if !thrown.is_unit() && codec::encode(&thrown, &mut probe).is_ok() {
        map.insert("thrown".into(), thrown);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::board::NoNotices;
    use std::os::fd::AsRawFd;

    /// A caller for the test: `double` doubles, `boom` fails, `bye` exits.
    struct Fake;

    impl Caller for Fake {
        fn call(
            &mut self,
            name: &str,
            curry: &[Dynamic],
            args: Array,
            _role: &str,
        ) -> Result<Dynamic, Outcome> {
            let all: Vec<i64> = curry
                .iter()
                .chain(&args)
                .map(|v| v.as_int().unwrap_or(0))
                .collect();
            match name {
                "double" => Ok(Dynamic::from_int(2 * all.iter().sum::<i64>())),
                "boom" => Err(Outcome::Failed(Error::value("boom").to_map())),
                "bye" => Err(Outcome::Exit(3)),
                _ => Err(Outcome::Failed(not_found(name, all.len(), false))),
            }
        }

        fn type_name(&self, rust: &str) -> String {
            rust.to_string()
        }
    }

    fn task(job: u64, function: &str, items: Vec<i64>) -> Vec<u8> {
        TaskMsg {
            job,
            index: 0,
            function: function.into(),
            curry: vec![Dynamic::from_int(100)],
            items: items.into_iter().map(Dynamic::from_int).collect(),
            star: false,
        }
        .frame(str::to_string)
        .unwrap()
    }

    fn replies(bytes: &[u8]) -> Vec<ReplyMsg> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some((value, used)) = pipe::unframe(&bytes[at..], "test").unwrap() {
            out.push(ReplyMsg::from_value(value).unwrap());
            at += used;
        }
        assert_eq!(at, bytes.len());
        out
    }

    /// A worker on two plain pipes (not a socket), as one under ssh would have: it serves
    /// every task written before the input closed, then returns 0.
    #[test]
    fn a_worker_serves_over_plain_pipes() {
        let (task_read, task_write) = nix::unistd::pipe().unwrap();
        let (reply_read, reply_write) = nix::unistd::pipe().unwrap();
        let mut input = task(1, "double", vec![1, 2]);
        input.extend(task(2, "boom", vec![1]));
        input.extend(task(3, "nothing", vec![1]));
        nix::unistd::write(&task_write, &input).unwrap();
        drop(task_write);
        let code = serve(
            &mut Fake,
            Channel {
                input: task_read.as_fd(),
                output: reply_write.as_fd(),
            },
            &NoNotices,
            None,
        );
        assert_eq!(code, 0);
        drop(reply_write);
        let mut out = Vec::new();
        let mut file = std::fs::File::from(reply_read);
        std::io::Read::read_to_end(&mut file, &mut out).unwrap();
        let replies = replies(&out);
        assert_eq!(replies.len(), 3);
        assert!(matches!(&replies[0], ReplyMsg::Done { job: 1, values, .. }
            if values.iter().map(|v| v.as_int().unwrap()).collect::<Vec<_>>() == [202, 204]));
        assert!(matches!(&replies[1], ReplyMsg::Failed { job: 2, error, .. }
            if error["message"].to_string() == "boom"));
        assert!(matches!(&replies[2], ReplyMsg::Failed { job: 3, error, .. }
            if error["message"].to_string().contains("cannot find `nothing`")));
        let _ = task_read.as_raw_fd();
    }

    #[test]
    fn exit_in_a_task_and_a_failed_initializer_end_the_worker() {
        let (task_read, task_write) = nix::unistd::pipe().unwrap();
        let (reply_read, reply_write) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&task_write, &task(1, "bye", vec![1])).unwrap();
        let channel = || Channel {
            input: task_read.as_fd(),
            output: reply_write.as_fd(),
        };
        assert_eq!(serve(&mut Fake, channel(), &NoNotices, None), 3);
        let init = Func {
            name: "boom".into(),
            curry: Vec::new(),
        };
        assert_eq!(
            serve(&mut Fake, channel(), &NoNotices, Some((init, Vec::new()))),
            1
        );
        drop(reply_write);
        drop(task_write);
        let mut out = Vec::new();
        let mut file = std::fs::File::from(reply_read);
        std::io::Read::read_to_end(&mut file, &mut out).unwrap();
        assert!(matches!(&replies(&out)[..], [ReplyMsg::InitFailed { .. }]));
    }
}
