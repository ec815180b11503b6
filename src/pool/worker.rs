//! The worker side of a pool: read a task, call its function on each item, reply.

use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::Pid;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use crate::error::{Error, ErrorKind};
use crate::ipc::{codec, pipe};

/// The body of a worker: read a task, call its function on each argument list, reply;
/// until end of input (the pool closed, or the parent went) or `exit()` in a task.
/// The worker dies with the pool's process: its `ChildSetup` asks for that (a daemon).
pub(super) fn main(ctx: &NativeCallContext, fd: &OwnedFd, parent: Pid) -> i32 {
    let _ = parent;
    let source = ctx.call_source().map(str::to_string);
    let fd = fd.as_fd();
    loop {
        let message =
            match pipe::read_message(fd, "the pool's task socket", || {}, &mut |_| Ok(true)) {
                Ok(Some(message)) => message,
                _ => return 0,
            };
        let Some(mut task) = message.try_cast::<Array>().filter(|a| a.len() == 6) else {
            return 0;
        };
        let chunk = std::mem::take(&mut task[4])
            .try_cast::<Array>()
            .unwrap_or_default();
        let curry = std::mem::take(&mut task[3])
            .try_cast::<Array>()
            .unwrap_or_default();
        let name = std::mem::take(&mut task[2])
            .into_string()
            .unwrap_or_default();
        let (job, index) = (task[0].clone(), task[1].clone());
        let star = task[5].as_bool().unwrap_or(false);
        let (ok, payload) = match run_chunk(ctx, &name, curry, chunk, star, source.as_deref()) {
            Ok(values) => (true, Dynamic::from_array(values)),
            Err(Outcome::Failed(map)) => (false, Dynamic::from_map(map)),
            Err(Outcome::Exit(code)) => return code,
        };
        let reply = Dynamic::from_array(vec![job, index, Dynamic::from_bool(ok), payload]);
        let sent = pipe::with_message(
            &reply,
            |t| ctx.engine().map_type_name(t).to_string(),
            |pieces| pipe::write_pieces(fd, pieces, true, "the pool's reply socket"),
        );
        match sent {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::ValueError => {
                // A result that cannot travel: say so instead.
                let map = Error::value(format!(
                    "a pool task's result cannot be sent back: {}",
                    e.message
                ))
                .to_map();
                let reply = Dynamic::from_array(vec![
                    task[0].clone(),
                    task[1].clone(),
                    Dynamic::FALSE,
                    Dynamic::from_map(map),
                ]);
                if pipe::with_message(&reply, str::to_string, |pieces| {
                    pipe::write_pieces(fd, pieces, true, "the pool's reply socket")
                })
                .is_err()
                {
                    return 0;
                }
            }
            Err(_) => return 0,
        }
    }
}

enum Outcome {
    Failed(Map),
    Exit(i32),
}

fn resolve(ctx: &NativeCallContext, name: &str, arity: usize) -> Option<FnPtr> {
    let found = ctx
        .iter_namespaces()
        .flat_map(|m| m.iter_script_fn_info())
        .find(|f| f.2 == name && f.3 == arity)
        .map(|f| FnPtr::from(f.4.clone()));
    found.or_else(|| FnPtr::new(name).ok())
}

fn run_chunk(
    ctx: &NativeCallContext,
    name: &str,
    curry: Array,
    chunk: Array,
    star: bool,
    source: Option<&str>,
) -> std::result::Result<Array, Outcome> {
    let mut results = Array::with_capacity(chunk.len());
    let mut cache: Option<(usize, FnPtr)> = None;
    for item in chunk {
        let args = if star {
            item.try_cast::<Array>().unwrap_or_default()
        } else {
            vec![item]
        };
        let arity = curry.len() + args.len();
        let func = match &cache {
            Some((a, f)) if *a == arity => f,
            _ => match resolve(ctx, name, arity) {
                Some(mut f) => {
                    f.set_curry(curry.iter().cloned());
                    &cache.insert((arity, f)).1
                }
                None => return Err(Outcome::Failed(not_found(name, arity))),
            },
        };
        match func.call_within_context::<Dynamic>(ctx, args) {
            Ok(value) => results.push(value),
            Err(err) => {
                if let Some(code) = crate::process::package::exit_request(&err) {
                    return Err(Outcome::Exit(code));
                }
                if let EvalAltResult::ErrorFunctionNotFound(sig, _) = &*err {
                    if sig.starts_with(&format!("{name} (")) || sig == name {
                        return Err(Outcome::Failed(not_found(name, arity)));
                    }
                }
                return Err(Outcome::Failed(task_error(&err, source)));
            }
        }
    }
    Ok(results)
}

fn not_found(name: &str, arity: usize) -> Map {
    let shown = if name.starts_with("anon$") {
        "the closure".to_string()
    } else {
        format!("`{name}`")
    };
    let arguments = if arity == 1 { "argument" } else { "arguments" };
    Error::process(format!(
        "the pool's workers cannot find {shown} with {arity} {arguments}: a worker knows the \
         functions and closures that existed when it was forked (one defined in a later REPL \
         input is not among them: make a new Pool)"
    ))
    .to_map()
}

/// The catchable map for a task's error: the task's own kind when it raised a procscript
/// error, `ProcessError` otherwise; the message says where in the task it happened.
fn task_error(err: &EvalAltResult, source: Option<&str>) -> Map {
    let located = crate::diagnostic::locate(err, source);
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
        (Some(file), Some(line)) => format!(" (in a pool task, at {file}:{line})"),
        (None, Some(line)) => format!(" (in a pool task, at line {line})"),
        _ => " (in a pool task)".to_string(),
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
