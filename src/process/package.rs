//! The Rhai surface of processes: `Process`, `start`, `join`, `getpid`, `spawn`, `exit` ...
//!
//! Glue only: converts script values to [`Process`] calls and errors to catchable maps.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, Position, INT};

use super::{Job, Limits, Options, Process};
use crate::diagnostic;
use crate::error::{Error, ErrorKind};
use crate::output::{self, Stream};

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

def_package! {
    /// Processes: `Process`, `spawn`, `join`, `getpid`, `sleep`, `exit` and the rest of
    /// Python's `multiprocessing.Process` surface.
    ///
    /// `spawn` is syntax, not a function: add it with [`register_spawn_syntax`].
    pub ProcessPackage(lib) {
        combine_with_exported_module!(lib, "process", process_functions);
    }
}

/// Converts a number of seconds (`()` meaning "no limit") to a duration.
pub fn seconds(value: &Dynamic, what: &str) -> Result<Option<Duration>, Error> {
    let secs = if value.is_unit() {
        return Ok(None);
    } else if let Ok(i) = value.as_int() {
        i as f64
    } else if let Ok(f) = value.as_float() {
        f
    } else {
        return Err(Error::new(
            ErrorKind::TypeError,
            format!(
                "{what} must be a number of seconds, not {}",
                crate::error::type_name(value)
            ),
        ));
    };
    if secs.is_nan() || secs < 0.0 {
        return Err(Error::value(format!(
            "{what} must be a non-negative number of seconds, not {secs}"
        )));
    }
    Ok(Some(
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
    ))
}

/// A join timeout: `()` waits for ever, a negative number is taken as 0 (as Python's
/// `join` does), and anything but a number is a `TypeError`.
fn join_seconds(value: &Dynamic) -> Result<Option<Duration>, Error> {
    let negative = value.as_int().is_ok_and(|i| i < 0) || value.as_float().is_ok_and(|f| f < 0.0);
    if negative {
        return Ok(Some(Duration::ZERO));
    }
    seconds(value, "the join timeout")
}

/// Puts keyword arguments in the positions of the target's parameters of those names.
fn place_kwargs(
    ctx: &NativeCallContext,
    target: &FnPtr,
    mut args: Vec<Dynamic>,
    mut kwargs: Map,
) -> Result<Vec<Dynamic>, Error> {
    if kwargs.is_empty() {
        return Ok(args);
    }
    let name = target.fn_name();
    let shown = if target.is_anonymous() {
        "the closure".to_string()
    } else {
        format!("`{name}`")
    };
    let curried = target.curry().len();
    let total = curried + args.len() + kwargs.len();
    let mut defs = ctx
        .iter_namespaces()
        .flat_map(|m| m.iter_script_fn_info())
        .filter(|f| f.2 == name);
    let Some(def) = defs.find(|f| f.3 == total).map(|f| f.4.clone()) else {
        return Err(Error::new(
            ErrorKind::TypeError,
            format!(
                "{shown} has no script definition taking {} positional and {} keyword arguments",
                args.len(),
                kwargs.len()
            ),
        ));
    };
    let wanted = &def.params[(curried + args.len()).min(def.params.len())..];
    if let Some(extra) = kwargs
        .keys()
        .find(|k| !wanted.iter().any(|p| p.as_str() == k.as_str()))
    {
        return Err(Error::new(
            ErrorKind::TypeError,
            format!("{shown} got an unexpected keyword argument `{extra}`"),
        ));
    }
    for param in wanted {
        match kwargs.remove(param.as_str()) {
            Some(value) => args.push(value),
            None => {
                return Err(Error::new(
                    ErrorKind::TypeError,
                    format!("{shown} is missing its argument `{param}`"),
                ))
            }
        }
    }
    Ok(args)
}

fn expect_map(value: Dynamic, what: &str) -> Result<Map, Error> {
    if value.is_unit() {
        return Ok(Map::new());
    }
    let type_name = crate::error::type_name(&value);
    value.try_cast::<Map>().ok_or_else(|| {
        Error::new(
            ErrorKind::TypeError,
            format!("{what} must be a map, not {type_name}"),
        )
    })
}

fn expect_args(value: Dynamic) -> Result<Vec<Dynamic>, Error> {
    if value.is_unit() {
        return Ok(Vec::new());
    }
    crate::builtins::as_array(&value)
        .map(|a| a.into_iter().collect())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::TypeError,
                format!(
                    "`args` must be an array (or a range), not {}",
                    crate::error::type_name(&value)
                ),
            )
        })
}

/// How many arguments each script definition of `name` takes, less the `curried` ones
/// already bound (a closure's captured variables).
fn script_arities<'a>(
    namespaces: impl Iterator<Item = &'a rhai::Module>,
    name: &str,
    curried: usize,
) -> Vec<usize> {
    let mut counts: Vec<usize> = namespaces
        .flat_map(|m| m.iter_script_fn_info())
        .filter(|f| f.2 == name)
        .map(|f| f.3.saturating_sub(curried))
        .collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// Whether a native function `name` takes `count` arguments (a script function that does
/// not fit may be shadowing one that does).
fn native_takes(engine: &Engine, name: &str, count: usize) -> bool {
    engine.gen_fn_signatures(true).iter().any(|signature| {
        let Some(params) = signature
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.rsplit_once(')'))
            .map(|(params, _)| params)
        else {
            return false;
        };
        let mut depth = 0i32;
        let mut n = usize::from(!params.trim().is_empty());
        for c in params.chars() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' | ')' | ']' => depth -= 1,
                ',' if depth == 0 => n += 1,
                _ => {}
            }
        }
        n == count
    })
}

/// Python's check that a call fits its function, made in the parent before anything
/// forks: `TypeError: task takes 1 argument, 2 given`. Functions with no script
/// definition (natives) are left to the call itself.
pub fn check_call_arity<'a>(
    namespaces: impl Iterator<Item = &'a rhai::Module>,
    engine: &Engine,
    name: &str,
    curried: usize,
    given: usize,
) -> Result<(), Error> {
    let counts = script_arities(namespaces, name, curried);
    if counts.is_empty() || counts.contains(&given) || native_takes(engine, name, curried + given) {
        return Ok(());
    }
    let shown = if name.starts_with("anon$") {
        "the closure".to_string()
    } else {
        name.to_string()
    };
    let wanted: Vec<String> = counts.iter().map(usize::to_string).collect();
    let wanted = match wanted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let plural = if counts == [1] { "" } else { "s" };
    Err(Error::new(
        ErrorKind::TypeError,
        format!("{shown} takes {wanted} argument{plural}, {given} given"),
    ))
}

/// [`check_call_arity`] for a function value called with `given` arguments.
pub fn check_arity(ctx: &NativeCallContext, target: &FnPtr, given: usize) -> Result<(), Error> {
    check_call_arity(
        ctx.iter_namespaces(),
        ctx.engine(),
        target.fn_name(),
        target.curry().len(),
        given,
    )
}

/// The fields of an object-style ("subclass" form) process, as the parent sees them:
/// readable and settable as `p.count`, and handed to the child as `this` at `start()`.
pub struct ObjectFields(pub RefCell<Map>);

/// The object-style fields of `process`, if it was made from a map with `run`.
fn fields_of(process: &Process) -> Option<Rc<ObjectFields>> {
    process.attachment::<ObjectFields>()
}

/// The object a child's `run` gets as `this`: the fields as they are now, with `name`
/// set to the process's name (Python's `self.name`).
fn object_for_child(process: &Process, fields: &ObjectFields) -> Dynamic {
    let mut map = fields.0.borrow().clone();
    map.insert("name".into(), process.name().into());
    map.into()
}

/// Takes an optional option of type `T` out of `map` (`()` counts as absent).
fn take_typed<T: rhai::Variant + Clone>(
    map: &mut Map,
    key: &str,
    type_name: &str,
) -> Result<Option<T>, Error> {
    match map.remove(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => {
            let actual = crate::error::type_name(&v);
            v.try_cast::<T>().map(Some).ok_or_else(|| {
                Error::new(
                    ErrorKind::TypeError,
                    format!("`{key}` must be a {type_name}, not {actual}"),
                )
            })
        }
    }
}

/// Reads the process options (`name`, `daemon`, `die_with_parent`, `limits`) out of a map,
/// leaving the rest.
pub(crate) fn take_options(map: &mut Map) -> Result<Options, Error> {
    let name = take_typed::<ImmutableString>(map, "name", "string")?.map(|s| s.to_string());
    let daemon = take_typed::<bool>(map, "daemon", "boolean")?;
    let die_with_parent = take_typed::<bool>(map, "die_with_parent", "boolean")?;
    let limits = match map.remove("limits") {
        None => Limits::default(),
        Some(v) => take_limits(expect_map(v, "`limits`")?)?,
    };
    Ok(Options {
        name,
        daemon,
        die_with_parent,
        limits,
    })
}

/// Reads `#{ cpu_secs, memory_bytes, open_files }`.
fn take_limits(mut map: Map) -> Result<Limits, Error> {
    let mut take = |key: &str| -> Result<Option<u64>, Error> {
        match map.remove(key) {
            None => Ok(None),
            Some(v) if v.is_unit() => Ok(None),
            Some(v) => {
                let type_name = crate::error::type_name(&v);
                let n = v.as_int().map_err(|_| {
                    Error::new(
                        ErrorKind::TypeError,
                        format!("limit `{key}` must be an integer, not {type_name}"),
                    )
                })?;
                u64::try_from(n).map(Some).map_err(|_| {
                    Error::value(format!("limit `{key}` must not be negative, not {n}"))
                })
            }
        }
    };
    let limits = Limits {
        cpu_secs: take("cpu_secs")?,
        memory_bytes: take("memory_bytes")?,
        open_files: take("open_files")?,
    };
    if let Some(extra) = map.keys().next() {
        return Err(Error::value(format!(
            "unknown limit `{extra}` (expected `cpu_secs`, `memory_bytes`, `open_files`)"
        )));
    }
    Ok(limits)
}

fn fn_label(target: &FnPtr) -> String {
    if target.is_anonymous() {
        "<closure>".into()
    } else {
        target.fn_name().to_string()
    }
}

fn from_target(
    ctx: &NativeCallContext,
    target: Dynamic,
    args: Dynamic,
    opts: Dynamic,
) -> Result<Process, Error> {
    if target.is_map() {
        if !args.is_unit() || !opts.is_unit() {
            return Err(Error::new(
                ErrorKind::TypeError,
                "Process(#{ ... }) takes its arguments inside the map (`args`, `kwargs`, `name`, `daemon`)",
            ));
        }
        return from_map(ctx, target.cast::<Map>());
    }
    let type_name = crate::error::type_name(&target);
    let Some(target) = target.try_cast::<FnPtr>() else {
        return Err(Error::new(
            ErrorKind::TypeError,
            format!("a process target must be a function (a name, `Fn(\"name\")` or a closure), not {type_name}"),
        ));
    };
    // `Process(task, #{ name: "x" })`: a map in second place is the options.
    let (args, opts) = if args.is_map() && opts.is_unit() {
        (Dynamic::UNIT, args)
    } else {
        (args, opts)
    };
    let args = expect_args(args)?;
    let mut opts = expect_map(opts, "the options")?;
    let options = take_options(&mut opts)?;
    let kwargs = match opts.remove("kwargs") {
        Some(k) => expect_map(k, "`kwargs`")?,
        None => Map::new(),
    };
    if let Some(extra) = opts.keys().next() {
        return Err(Error::value(format!(
            "unknown process option `{extra}` (expected `name`, `daemon`, `kwargs`, \
             `die_with_parent`, `limits`)"
        )));
    }
    check_arity(ctx, &target, args.len() + kwargs.len())?;
    let args = place_kwargs(ctx, &target, args, kwargs)?;
    let label = fn_label(&target);
    Ok(Process::new(
        Some(Job::Call { target, args }),
        label,
        options,
    ))
}

/// `Process(#{ target, args, ... })` and the object form `Process(#{ run, ... })`. A map
/// with `command` is a program, which the command package handles (it registers its own
/// `Process(map)`, which comes here for the other maps).
pub fn from_map(ctx: &NativeCallContext, mut map: Map) -> Result<Process, Error> {
    if map.contains_key("command") {
        return Err(Error::value(
            "`Process(#{ command: [...] })` needs procscript's command package (`run`, `pipeline`), \
             which this engine does not have",
        ));
    }
    if let Some(target) = map.remove("target") {
        let args = map.remove("args").unwrap_or(Dynamic::UNIT);
        let mut opts = Map::new();
        for key in ["name", "daemon", "kwargs", "die_with_parent", "limits"] {
            if let Some(v) = map.remove(key) {
                opts.insert(key.into(), v);
            }
        }
        if let Some(extra) = map.keys().next() {
            return Err(Error::value(format!(
                "unknown process option `{extra}` (expected `target`, `args`, `kwargs`, `name`, \
                 `daemon`, `die_with_parent`, `limits`)"
            )));
        }
        return from_target(ctx, target, args, opts.into());
    }
    // The "subclass" form: an object with a `run` closure and fields of its own.
    let Some(run) = map.get("run").and_then(|r| r.clone().try_cast::<FnPtr>()) else {
        return Err(Error::value(
            "Process(#{ ... }) needs a `target` function, or a `run` closure for an object-style process",
        ));
    };
    check_arity(ctx, &run, 0)?;
    let mut fields = map.clone();
    let options = take_options(&mut fields)?;
    if let Some(name) = &options.name {
        map.insert("name".into(), name.clone().into());
    }
    let process = Process::new(Some(Job::Object(map.clone().into())), "run", options);
    process.set_attachment(Rc::new(ObjectFields(RefCell::new(map))));
    Ok(process)
}

/// The error for a field a process does not have.
fn no_field(process: &Process, field: &str) -> Error {
    let why = if fields_of(process).is_some() {
        format!("`{}` has no field `{field}`", process.name())
    } else {
        format!(
            "`{}` has no field `{field}`: only an object-style process, \
             Process(#{{ run: || ..., {field}: ... }}), has fields of its own",
            process.name()
        )
    };
    Error::new(ErrorKind::AttributeError, why)
}

/// What a child's script result means as an exit code; prints an uncaught error the way
/// CPython does (`Process Process-1:` then the error).
pub fn exit_code_of(result: RhaiResult<Dynamic>, source: Option<&str>) -> i32 {
    let Err(err) = result else {
        // A last `print` that found the reader gone: a death by SIGPIPE, as a shell says.
        return if crate::runtime::stdout_closed() {
            crate::runtime::EXIT_PIPE_CLOSED
        } else {
            0
        };
    };
    if let Some(code) = exit_request(&err) {
        return code;
    }
    if let Some(signal) = crate::signal::pending() {
        // Stopped by SIGTERM or SIGINT: the process ends by the signal (see
        // `Process::fork`), quietly, as a process without a handler would.
        return 128 + signal as i32;
    }
    let text = format!(
        "Process {}:\n{}",
        super::my_name(),
        diagnostic::render(&err, source, crate::runtime::stderr_color())
    );
    let _ = output::write_line(Stream::Stderr, &text);
    1
}

/// The code an `exit(...)` asked for, if this error is one. `exit("text")` prints the text
/// and gives 1, as Python's `sys.exit("text")` does.
pub fn exit_request(err: &EvalAltResult) -> Option<i32> {
    match err {
        EvalAltResult::ErrorTerminated(value, _) | EvalAltResult::Exit(value, _) => {
            Some(if value.is_unit() {
                0
            } else if let Ok(code) = value.as_int() {
                code as i32
            } else if let Ok(flag) = value.as_bool() {
                i32::from(flag)
            } else {
                let _ = output::write_line(Stream::Stderr, &value.to_string());
                1
            })
        }
        _ => None,
    }
}

fn run_job(ctx: &NativeCallContext, job: Option<Job>) -> i32 {
    let source = ctx.call_source().map(str::to_string);
    let result = match job {
        None => Ok(Dynamic::UNIT),
        Some(Job::Call { target, args }) => target.call_within_context::<Dynamic>(ctx, args),
        Some(Job::Object(mut object)) => {
            let run = object
                .read_lock::<Map>()
                .and_then(|m| m.get("run").and_then(|r| r.clone().try_cast::<FnPtr>()));
            match run {
                Some(run) => run.call_as_method_within_context::<Dynamic>(ctx, &mut object, ()),
                None => Ok(Dynamic::UNIT),
            }
        }
        // Started by `start_process` through `exec::start`, never run here.
        Some(Job::Command(_)) => Ok(Dynamic::UNIT),
    };
    exit_code_of(result, source.as_deref())
}

/// Starts `process`, whose child runs its job with the script context `ctx`.
pub fn start_process(ctx: &NativeCallContext, process: &Process) -> Result<(), Error> {
    let job = match process.take_job_for_start()? {
        // The child gets the fields as the parent left them (`p.count = 9` before start).
        Some(Job::Object(object)) => Some(Job::Object(
            fields_of(process).map_or(object, |f| object_for_child(process, &f)),
        )),
        other => other,
    };
    if let Some(Job::Command(command)) = job {
        return super::exec::start(process, &command);
    }
    // The parent keeps nothing of the job: arguments (a socket, say) close here when the
    // script drops them.
    let mut job = Some(job);
    process.fork(|| run_job(ctx, job.take().flatten()))?;
    drop(job);
    Ok(())
}

/// Registers `spawn EXPR` / `spawn { BLOCK }`: fork now, evaluate in the child (which sees
/// the current variables), and return the started process.
pub fn register_spawn_syntax(engine: &mut Engine) {
    engine
        .register_custom_syntax(["spawn", "$expr$"], false, |context, inputs| {
            if let rhai::Expr::FnCall(call, _) = &*inputs[0] {
                if call.namespace.is_empty() {
                    check_call_arity(
                        context.iter_namespaces(),
                        context.engine(),
                        &call.name,
                        0,
                        call.args.len(),
                    )?;
                }
            }
            let process = Process::new(None, "spawn", Options::default());
            process.take_job_for_start()?;
            let source = context.source().map(str::to_string);
            let expr = &inputs[0];
            process.fork(|| exit_code_of(context.eval_expression_tree(expr), source.as_deref()))?;
            Ok(Dynamic::from(process))
        })
        .expect("`spawn` syntax registers");
}

#[export_module]
mod process_functions {
    use super::*;

    /// A handle on a process: made by `Process(...)` or `spawn`, started with `start()`.
    pub type Process = super::Process;

    /// Makes a process that will run `target`; it does not start it. `target` is a script
    /// function's bare name (`task`), `Fn("task")`, or a closure (which takes a copy of the
    /// variables it captures).
    ///
    /// Or pass one map: `#{ target, args, kwargs, name, daemon }` (Python's keyword form),
    /// or `#{ name, daemon, run: || { ... }, ...fields }`, the "subclass" form: `start()`
    /// calls `run` in the child with `this` bound to a copy of the map.
    ///
    /// Errors: `TypeError` (a target that is not a function, `args` not an array, a keyword
    /// that fits no parameter), `ValueError` (an unknown option).
    ///
    /// ```rhai
    /// fn task(name) { print(`${name} is running`); }
    /// let p = Process(task, ["safly1"]);
    /// p.start();
    /// p.join();
    /// ```
    #[rhai_fn(name = "Process", return_raw)]
    pub fn process_new(ctx: NativeCallContext, target: Dynamic) -> RhaiResult<Process> {
        Ok(from_target(&ctx, target, Dynamic::UNIT, Dynamic::UNIT)?)
    }

    /// Makes a process that will call `target` with the array `args` (or with the options
    /// map `#{ name, daemon, kwargs }` when the second argument is a map).
    ///
    /// ```rhai
    /// fn task(name) { print(`${name} is running`); }
    /// let p = Process(task, #{ kwargs: #{ name: "safly2" } });
    /// p.start();
    /// ```
    #[rhai_fn(name = "Process", return_raw)]
    pub fn process_new_args(
        ctx: NativeCallContext,
        target: Dynamic,
        args: Dynamic,
    ) -> RhaiResult<Process> {
        Ok(from_target(&ctx, target, args, Dynamic::UNIT)?)
    }

    /// Makes a process that will call `target` with the array `args`. `opts` is a map:
    /// `name` (default `Process-N`, numbered now; `Process-N:M` for a child's child),
    /// `daemon` (`true`: terminated rather than waited for when its parent ends; default: the
    /// parent's flag), `kwargs` (a map matched to the target's parameter names, for script
    /// functions and closures), `die_with_parent` (`true`: the kernel kills it when its
    /// parent dies, even by SIGKILL; default: `true` for daemons), and `limits`, a map of
    /// `cpu_secs` (SIGXCPU, exitcode -24, past it), `memory_bytes` (allocations fail past it:
    /// the child aborts, exitcode -6) and `open_files` (opening more is an `OSError` with
    /// errno 24), applied with `setrlimit` in the child.
    ///
    /// With `procscript run --max-procs N`, a process with N live children cannot start
    /// another (`ProcessError`): no fork bomb.
    ///
    /// ```rhai
    /// fn piao(name) { print(`${name} is piaoing`); }
    /// let p = Process(piao, ["alex"], #{ name: "xxxxxxxx" });
    /// print(p.name);
    /// ```
    #[rhai_fn(name = "Process", return_raw)]
    pub fn process_new_opts(
        ctx: NativeCallContext,
        target: Dynamic,
        args: Dynamic,
        opts: Dynamic,
    ) -> RhaiResult<Process> {
        Ok(from_target(&ctx, target, args, opts)?)
    }

    /// Starts the process with `fork()` and returns at once. The child runs the target,
    /// waits for its own children, and ends; it never runs the rest of the parent's script.
    /// The parent drops the target and its arguments, so what was handed to the child (a
    /// socket, say) closes in the parent once the script lets go of it.
    ///
    /// Errors (`ProcessError`): started twice; made by another process; called in a daemon;
    /// too many live children (`--max-procs`); the process has more than one thread; the
    /// fork failed (errno 11, `EAGAIN`, when the user is out of processes). `ValueError`
    /// after `close()`.
    #[rhai_fn(return_raw, volatile)]
    pub fn start(ctx: NativeCallContext, process: &mut Process) -> RhaiResult<()> {
        Ok(start_process(&ctx, process)?)
    }

    /// Runs the process's target here, in the current process, and returns what it
    /// returns (Python's `Process.run()`, which `start()` calls in the child). For the
    /// object form, `run` gets the process's fields as `this`, and what it changes stays
    /// changed (`p.count`). A process that runs a program starts it and waits for it,
    /// returning its exit code.
    ///
    /// Errors: `ProcessError` once started (the target went to the child).
    ///
    /// ```rhai
    /// fn task(name) { print(`${name} runs in ${getpid()}`); 7 }
    /// let p = Process(task, ["here"]);
    /// print(p.run());   // here runs in (this pid), then 7
    /// let counter = Process(#{ count: 0, run: || this.count += 1 });
    /// counter.run();
    /// print(counter.count);   // 1
    /// ```
    #[rhai_fn(name = "run", return_raw, volatile)]
    pub fn run(ctx: NativeCallContext, process: &mut Process) -> RhaiResult<Dynamic> {
        match process.job() {
            None => Err(Error::process(format!(
                "cannot run `{}` here: it has started, and its target went to the child",
                process.name()
            ))
            .into()),
            Some(Job::Call { target, args }) => target.call_within_context(&ctx, args),
            Some(Job::Object(object)) => {
                let fields = fields_of(process);
                let mut this = match &fields {
                    Some(f) => object_for_child(process, f),
                    None => object,
                };
                let run = this
                    .read_lock::<Map>()
                    .and_then(|m| m.get("run").and_then(|r| r.clone().try_cast::<FnPtr>()));
                let result = match run {
                    Some(run) => {
                        run.call_as_method_within_context::<Dynamic>(&ctx, &mut this, ())?
                    }
                    None => Dynamic::UNIT,
                };
                if let (Some(fields), Some(map)) = (fields, this.try_cast::<Map>()) {
                    *fields.0.borrow_mut() = map;
                }
                Ok(result)
            }
            Some(Job::Command(_)) => {
                start_process(&ctx, process)?;
                Ok(process.join(None)?.map_or(Dynamic::UNIT, Dynamic::from_int))
            }
        }
    }

    /// A field of an object-style process, `p.count` for `Process(#{ count: 7, run: ... })`:
    /// the parent's copy (the child works on its own copy, as in Python). `AttributeError`
    /// for a field the object does not have.
    ///
    /// ```rhai
    /// let p = Process(#{ count: 7, run: || print(this.count) });
    /// print(p.count);   // 7
    /// p.count = 8;      // the child will print 8
    /// p.start();
    /// ```
    #[rhai_fn(index_get, return_raw)]
    pub fn get_field(process: &mut Process, field: &str) -> RhaiResult<Dynamic> {
        let value = fields_of(process).and_then(|f| f.0.borrow().get(field).cloned());
        value.ok_or_else(|| no_field(process, field).into())
    }

    /// Sets a field of an object-style process (before `start()`, the child sees it).
    #[rhai_fn(index_set, return_raw)]
    pub fn set_field(process: &mut Process, field: &str, value: Dynamic) -> RhaiResult<()> {
        match fields_of(process) {
            Some(fields) => {
                fields.0.borrow_mut().insert(field.into(), value);
                Ok(())
            }
            None => Err(no_field(process, field).into()),
        }
    }

    /// Waits for the process to end and returns its `exitcode`.
    ///
    /// Errors (`ProcessError`): not started; not a child of this process; the current process.
    ///
    /// ```rhai
    /// let p = spawn sleep(0.1);
    /// print(p.join());   // 0
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn join(process: &mut Process) -> RhaiResult<Dynamic> {
        Ok(process.join(None)?.map_or(Dynamic::UNIT, Dynamic::from_int))
    }

    /// Waits at most `timeout` seconds (int or float); returns the `exitcode`, or `()` if
    /// the process is still running. A negative timeout counts as 0, and `()` means no
    /// timeout, as `None` does in Python.
    ///
    /// ```rhai
    /// let p = spawn sleep(5);
    /// print(p.join(0.1));   // None: still running (join returned ())
    /// print(p.join(-1));    // None: a negative timeout only looks
    /// p.kill();
    /// print(p.join(()));    // -9
    /// ```
    #[rhai_fn(name = "join", return_raw, volatile)]
    pub fn join_timeout(process: &mut Process, timeout: Dynamic) -> RhaiResult<Dynamic> {
        let timeout = join_seconds(&timeout)?;
        Ok(process
            .join(timeout)?
            .map_or(Dynamic::UNIT, Dynamic::from_int))
    }

    /// Whether the process has started and not yet ended. `current_process().is_alive()` is
    /// `true`; `parent_process().is_alive()` tells whether the parent still runs.
    #[rhai_fn(return_raw, volatile)]
    pub fn is_alive(process: &mut Process) -> RhaiResult<bool> {
        Ok(process.is_alive()?)
    }

    /// Sends SIGTERM (a no-op once the process has ended). Its `exitcode` becomes `-15`.
    /// `ProcessError` before start.
    #[rhai_fn(return_raw, volatile)]
    pub fn terminate(process: &mut Process) -> RhaiResult<()> {
        Ok(process.signal(nix::sys::signal::Signal::SIGTERM)?)
    }

    /// Sends SIGKILL (a no-op once the process has ended). Its `exitcode` becomes `-9`.
    /// `ProcessError` before start.
    #[rhai_fn(return_raw, volatile)]
    pub fn kill(process: &mut Process) -> RhaiResult<()> {
        Ok(process.signal(nix::sys::signal::Signal::SIGKILL)?)
    }

    /// The process id, `()` before start. `ValueError` after `close()`.
    #[rhai_fn(get = "pid", pure, volatile, return_raw)]
    pub fn pid(process: &mut Process) -> RhaiResult<Dynamic> {
        process.check_closed()?;
        Ok(process
            .pid()
            .map_or(Dynamic::UNIT, |p| Dynamic::from_int(p.as_raw().into())))
    }

    /// The same as `pid` (Python's `ident`).
    ///
    /// ```rhai
    /// let p = spawn 1;
    /// print(p.ident == p.pid);   // true
    /// p.join();
    /// ```
    #[rhai_fn(get = "ident", pure, volatile, return_raw)]
    pub fn ident(process: &mut Process) -> RhaiResult<Dynamic> {
        pid(process)
    }

    /// A descriptor (an integer) that becomes readable when the process ends, and stays
    /// readable: wait on it with `select`-style waits beside sockets and pipes. It belongs
    /// to the handle and is closed by `close()`. `ValueError` before start and after
    /// `close()`.
    ///
    /// ```rhai
    /// let p = spawn sleep(0.05);
    /// let fd = p.sentinel;
    /// print(fd > 2);   // true
    /// p.join();
    /// p.close();
    /// ```
    #[rhai_fn(get = "sentinel", pure, volatile, return_raw)]
    pub fn sentinel(process: &mut Process) -> RhaiResult<INT> {
        Ok(process.sentinel()?.into())
    }

    /// Python's `close()`: releases the handle's resources (its sentinel, a command's
    /// pipes). `ValueError` if the process is still running; afterwards `start`, `join`,
    /// `is_alive`, `terminate`, `kill`, `pid`, `ident`, `exitcode` and `sentinel` raise
    /// `ValueError`. Closing twice does nothing.
    ///
    /// ```rhai
    /// let p = spawn 1;
    /// p.join();
    /// p.close();
    /// try { p.join(); } catch (e) { print(e.kind); }   // ValueError
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn close(process: &mut Process) -> RhaiResult<()> {
        Ok(process.close()?)
    }

    /// The authentication key, a blob: the main process gets 32 random bytes, and every
    /// process made afterwards inherits its maker's key, as in Python.
    ///
    /// ```rhai
    /// let p = Process(|| 1);
    /// print(p.authkey == current_process().authkey);   // true
    /// print(p.authkey.len());                          // 32
    /// ```
    #[rhai_fn(get = "authkey", pure)]
    pub fn authkey(process: &mut Process) -> rhai::Blob {
        process.authkey().to_vec()
    }

    /// Sets the authentication key (a blob or a string); on `current_process()`, the key
    /// this process's children inherit.
    #[rhai_fn(set = "authkey", return_raw)]
    pub fn set_authkey(process: &mut Process, key: Dynamic) -> RhaiResult<()> {
        let bytes = if key.is_blob() {
            key.cast::<rhai::Blob>()
        } else if key.is_string() {
            key.to_string().into_bytes()
        } else {
            return Err(Error::new(
                ErrorKind::TypeError,
                format!(
                    "`authkey` must be a blob or a string, not {}",
                    crate::error::type_name(&key)
                ),
            )
            .into());
        };
        process.set_authkey(&bytes);
        Ok(())
    }

    /// The name: `Process-N` unless given.
    #[rhai_fn(get = "name", pure)]
    pub fn name(process: &mut Process) -> String {
        process.name()
    }

    /// Renames the process.
    #[rhai_fn(set = "name")]
    pub fn set_name(process: &mut Process, name: ImmutableString) {
        process.set_name(name.to_string());
    }

    /// Whether the process is a daemon (ended, not waited for, when its parent finishes).
    #[rhai_fn(get = "daemon", pure)]
    pub fn daemon(process: &mut Process) -> bool {
        process.daemon()
    }

    /// Sets the daemon flag; only before `start()`.
    #[rhai_fn(set = "daemon", return_raw)]
    pub fn set_daemon(process: &mut Process, daemon: bool) -> RhaiResult<()> {
        Ok(process.set_daemon(daemon)?)
    }

    /// `()` while running; then 0 (returned), 1 (uncaught error), `n` from `exit(n)`, or
    /// `-N` if signal N ended it.
    ///
    /// ```rhai
    /// let p = spawn exit(3);
    /// p.join();
    /// print(p.exitcode);   // 3
    /// ```
    #[rhai_fn(get = "exitcode", pure, volatile, return_raw)]
    pub fn exitcode(process: &mut Process) -> RhaiResult<Dynamic> {
        process.check_closed()?;
        Ok(process.exitcode().map_or(Dynamic::UNIT, Dynamic::from_int))
    }

    /// Python's text for a process: `<Process name='Process-1' parent=4241 initial>`, then
    /// `... pid=4242 parent=4241 started>`, then `... stopped exitcode=0>` (or
    /// `exitcode=-SIGTERM`); ` daemon` before the `>` for daemons. `print(p)` shows it.
    #[rhai_fn(name = "to_string", pure)]
    pub fn to_string(process: &mut Process) -> String {
        process.to_string()
    }

    /// Same as `to_string`.
    #[rhai_fn(name = "to_debug", pure)]
    pub fn to_debug(process: &mut Process) -> String {
        process.to_string()
    }

    /// This process's id.
    #[rhai_fn(volatile)]
    pub fn getpid() -> INT {
        nix::unistd::getpid().as_raw().into()
    }

    /// The parent's process id.
    #[rhai_fn(volatile)]
    pub fn getppid() -> INT {
        nix::unistd::getppid().as_raw().into()
    }

    /// Sleeps for `secs` seconds (an integer or a float; `ValueError` if negative, NaN or
    /// infinite). Children that end meanwhile are still reaped at once. A length too long to
    /// end within the life of the machine (`sleep(1e300)`) sleeps until Ctrl-C or SIGTERM,
    /// which end every sleep.
    ///
    /// ```rhai
    /// sleep(0.01);
    /// ```
    #[rhai_fn(name = "sleep", return_raw, volatile)]
    pub fn sleep(secs: Dynamic) -> RhaiResult<()> {
        if secs.as_float().is_ok_and(|f| f.is_infinite()) {
            return Err(Error::value(format!(
                "the sleep length must be a finite number of seconds, not {secs}"
            ))
            .into());
        }
        if let Some(duration) = seconds(&secs, "the sleep length")? {
            crate::process::wait::sleep(duration)?;
        }
        Ok(())
    }

    /// Sleeps for `secs` whole seconds (overrides Rhai's own, which ignores bad values).
    #[rhai_fn(name = "sleep", return_raw, volatile)]
    pub fn sleep_int(secs: INT) -> RhaiResult<()> {
        sleep(Dynamic::from_int(secs))
    }

    /// Sleeps for `secs` seconds.
    #[rhai_fn(name = "sleep", return_raw, volatile)]
    pub fn sleep_float(secs: rhai::FLOAT) -> RhaiResult<()> {
        sleep(Dynamic::from_float(secs))
    }

    /// The handle of the process this code runs in (`MainProcess` in the main script).
    #[rhai_fn(volatile)]
    pub fn current_process() -> Process {
        Process::current()
    }

    /// The handle of this process's parent; `()` in the main process.
    #[rhai_fn(volatile)]
    pub fn parent_process() -> Dynamic {
        Process::parent().map_or(Dynamic::UNIT, Dynamic::from)
    }

    /// The started children that are still running (finished ones are reaped).
    #[rhai_fn(volatile)]
    pub fn active_children() -> Array {
        super::super::active_children()
            .into_iter()
            .map(Dynamic::from)
            .collect()
    }

    /// The number of CPUs this process may run on.
    pub fn cpu_count() -> INT {
        std::thread::available_parallelism().map_or(1, |n| n.get() as INT)
    }

    /// A random integer from `a` to `b`, both included (`ValueError` if `a > b`). Each child
    /// starts a fresh sequence, so children do not repeat their parent's numbers.
    ///
    /// ```rhai
    /// let n = randint(1, 3);
    /// print(n >= 1 && n <= 3);   // true
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn randint(a: INT, b: INT) -> RhaiResult<INT> {
        if a > b {
            return Err(Error::value(format!("empty range for randint({a}, {b})")).into());
        }
        Ok(fastrand::i64(a..=b))
    }

    /// A random float in `[0, 1)`.
    #[rhai_fn(volatile)]
    pub fn random() -> f64 {
        fastrand::f64()
    }

    /// Ends the current process with exit code 0.
    #[rhai_fn(name = "exit", return_raw, volatile)]
    pub fn exit0() -> RhaiResult<()> {
        Err(EvalAltResult::ErrorTerminated(Dynamic::from_int(0), Position::NONE).into())
    }

    /// Ends the current process with `code` (in a child, that child's `exitcode`).
    /// `exit("text")` prints the text to stderr and ends with 1, as Python does. At the end
    /// of the main script daemon children are still ended and the others waited for.
    #[rhai_fn(name = "exit", return_raw, volatile)]
    pub fn exit(code: Dynamic) -> RhaiResult<()> {
        Err(EvalAltResult::ErrorTerminated(code, Position::NONE).into())
    }
}
