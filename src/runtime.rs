//! Assembles the engine and runs a script file the way the `procscript` binary does,
//! end-of-script policy included.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rhai::packages::Package;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Module, Scope, AST};

use crate::diagnostic;
use crate::output::{self, Stream};
use crate::process::package::{exit_request, register_spawn_syntax, ProcessPackage};

/// Set when standard output's reader has gone; the script then ends quietly.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Line labels: 0 off, 1 plain, 2 coloured (see [`set_labels`]).
static LABELS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Prefixes every printed line with the printing process's name and pid
/// (`[Process-1 4242] alex is piaoing`), coloured per process when stdout is a terminal and
/// `NO_COLOR` is unset, as `docker compose` and `honcho` do. Lines stay whole.
pub fn set_labels(on: bool) {
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();
    LABELS.store(
        if !on {
            0
        } else if color {
            2
        } else {
            1
        },
        Ordering::Relaxed,
    );
}

/// Colours for labels, picked by pid so that each process keeps one.
const LABEL_COLORS: [u8; 10] = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/// `text` with each of its lines labelled with this process's name and pid.
fn labelled(text: &str, color: bool) -> String {
    let pid = crate::process::my_pid().as_raw();
    labelled_as(&crate::process::my_name(), pid, text, color)
}

/// Prints a line that another process printed (a task of a remote pool worker, whose
/// output comes as a message), as `print` does here; `--label` labels it with that
/// process's `name` and `pid`.
pub fn print_for(name: &str, pid: i32, text: &str) {
    let result = crate::progress::around(|| match LABELS.load(Ordering::Relaxed) {
        0 => output::write_line(Stream::Stdout, text),
        mode => output::write_line(Stream::Stdout, &labelled_as(name, pid, text, mode == 2)),
    });
    if result == Err(nix::errno::Errno::EPIPE) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `text` with each of its lines labelled with `name` and `pid`.
fn labelled_as(name: &str, pid: i32, text: &str, color: bool) -> String {
    let label = format!("[{name} {pid}]");
    let label = if color {
        let code = LABEL_COLORS[pid.unsigned_abs() as usize % LABEL_COLORS.len()];
        format!("\x1b[{code}m{label}\x1b[0m")
    } else {
        label
    };
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| format!("{label} {line}"))
        .collect();
    lines.join("\n")
}

/// Exit code for a script whose output reader went away (as a shell reports SIGPIPE).
pub const EXIT_PIPE_CLOSED: i32 = 141;

/// Whether a `print` of this process found standard output's reader gone.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Whether diagnostics on stderr get colour: a terminal, and `NO_COLOR` unset.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Limits that real scripts need: Rhai's debug-build defaults (8 call levels) are far
/// too tight, and its release defaults are set here explicitly so both builds agree.
///
/// Expression nesting is capped (128 levels, 64 in functions), so a deeply nested script is
/// a syntax error, not a stack overflow in the parser. Sizes of strings, arrays and maps are
/// left unlimited on purpose: with any of Rhai's size limits set, Rhai re-measures the whole
/// value after every change to it, so building an array with `push` becomes quadratic
/// (50,000 pushes took 17 times as long). An embedder that wants them sets them on
/// [`Runtime::engine_mut`] (`set_max_array_size`, `set_max_map_size`,
/// `set_max_string_size`); docs/robustness.md says what each costs.
fn set_limits(engine: &mut Engine) {
    engine.set_max_call_levels(128);
    engine.set_max_expr_depths(128, 64);
    engine.set_max_operations(0);
}

pub use crate::process::fork::{raise_stack_limit, restore_stack_limit, STACK_LIMIT};

/// Adds procscript's packages, syntax and hooks to an engine.
///
/// Keeps the engine's optimization level at `Simple`: `Full` would fold calls such as
/// `getpid()` into constants at compile time.
pub fn install(engine: &mut Engine) {
    crate::process::prepare();
    set_limits(engine);
    engine.set_optimization_level(rhai::OptimizationLevel::Simple);
    ProcessPackage::new().register_into_engine(engine);
    crate::net::package::NetPackage::new().register_into_engine(engine);
    crate::command::CommandPackage::new().register_into_engine(engine);
    register_spawn_syntax(engine);
    crate::ipc::IpcPackage::new().register_into_engine(engine);
    crate::ipc::register_with_syntax(engine);
    crate::pool::package::PoolPackage::new().register_into_engine(engine);
    crate::manager::ManagerPackage::new().register_into_engine(engine);
    crate::format::register(engine);
    // Last, so that its `to_string` of blobs and `()` comes before Rhai's own.
    crate::builtins::BuiltinsPackage::new().register_into_engine(engine);
    engine.on_print(|text| {
        let result = crate::progress::around(|| match LABELS.load(Ordering::Relaxed) {
            0 => output::write_line(Stream::Stdout, text),
            mode => output::write_line(Stream::Stdout, &labelled(text, mode == 2)),
        });
        if result == Err(nix::errno::Errno::EPIPE) {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
    });
    engine.on_debug(|text, source, pos| {
        let text = match (source, pos.line()) {
            (Some(source), Some(line)) => {
                let line = crate::line_map::original(source, line, pos.position().unwrap_or(1))
                    .map_or(line, |(line, _)| line);
                format!("[{source}:{line}] {text}")
            }
            _ => text.to_string(),
        };
        let _ = output::write_line(Stream::Stderr, &text);
    });
    engine.on_progress(|_| {
        // Between operations: reap children that ended while the script computes.
        crate::process::wait::reap_if_signalled();
        if let Some(signal) = crate::signal::pending() {
            return Some(Dynamic::from_int(128 + signal as i64));
        }
        STDOUT_CLOSED
            .load(Ordering::Relaxed)
            .then(|| Dynamic::from_int(EXIT_PIPE_CLOSED.into()))
    });
}

/// How a script run ended, when it did not succeed.
#[derive(Debug)]
pub enum ScriptError {
    /// The file could not be read.
    Read {
        /// The script's path.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The script did not compile; `rendered` shows where.
    Syntax {
        /// The diagnostic, ready to print.
        rendered: String,
    },
    /// An uncaught error ended the script; `rendered` shows where.
    Runtime {
        /// The diagnostic, ready to print.
        rendered: String,
    },
    /// An uncaught `KeyboardInterrupt` (Ctrl-C at an `input()` prompt) ended the script.
    KeyboardInterrupt {
        /// The diagnostic, ready to print.
        rendered: String,
    },
}

impl ScriptError {
    /// The exit status the binary uses: 2 for a file that cannot be read or compiled, 1 for
    /// an uncaught error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Read { .. } | Self::Syntax { .. } => 2,
            Self::Runtime { .. } => 1,
            Self::KeyboardInterrupt { .. } => 130,
        }
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read { path, error } => write!(f, "error: cannot read `{path}`: {error}"),
            Self::Syntax { rendered }
            | Self::Runtime { rendered }
            | Self::KeyboardInterrupt { rendered } => f.write_str(rendered),
        }
    }
}

impl std::error::Error for ScriptError {}

/// An engine with procscript installed, and the runner around it.
///
/// ```no_run
/// let mut runtime = procscript::Runtime::new();
/// let code = match runtime.run_file("scripts/join.rhai".as_ref(), &[]) {
///     Ok(code) => code,
///     Err(error) => {
///         eprintln!("{error}");
///         error.exit_code()
///     }
/// };
/// std::process::exit(code);
/// ```
pub struct Runtime {
    engine: Engine,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A runtime on a standard Rhai engine with every procscript package installed.
    pub fn new() -> Self {
        let mut engine = Engine::new();
        install(&mut engine);
        Self { engine }
    }

    /// The engine, to inspect.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to register more functions on.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Makes `args` visible to scripts (and inside their functions) as `ARGS`.
    pub fn set_args(&mut self, args: &[String]) {
        let mut module = Module::new();
        let array: Array = args.iter().map(|a| Dynamic::from(a.clone())).collect();
        module.set_var("ARGS", array);
        self.engine.register_global_module(module.into());
    }

    /// Reads and compiles a script, remembering its text for diagnostics.
    pub fn compile_file(&self, path: &Path) -> Result<AST, ScriptError> {
        let name = path.display().to_string();
        let text = read_script(path).map_err(|error| ScriptError::Read {
            path: name.clone(),
            error,
        })?;
        self.compile_source(&name, &text)
    }

    /// Compiles script text known as `name`.
    pub fn compile_source(&self, name: &str, text: &str) -> Result<AST, ScriptError> {
        diagnostic::register_source(name, text);
        let mut body = strip_shebang(text);
        // Rhai numbers lines only up to 65,535: a longer script is compiled from a packed
        // copy whose positions map back (see `line_map`).
        let packed = crate::line_map::too_long(&body)
            .then(|| crate::line_map::pack(&body))
            .flatten();
        crate::line_map::register(name, packed.as_ref().map(|(_, map)| map.clone()));
        if let Some((copy, _)) = packed {
            body = std::borrow::Cow::Owned(copy);
        }
        let mut ast = self.engine.compile(body).map_err(|e| ScriptError::Syntax {
            rendered: diagnostic::render(&e.into(), Some(name), stderr_color()),
        })?;
        ast.set_source(name);
        Ok(ast)
    }

    /// Runs a compiled script, then ends its daemon children and waits for the others.
    /// Returns the exit code the script asked for (`exit(n)`), 0 when it just ended.
    pub fn run_ast(&self, ast: &AST, scope: &mut Scope) -> Result<i32, ScriptError> {
        let result = self.engine.run_ast_with_scope(scope, ast);
        finish();
        // Stopped by Ctrl-C or SIGTERM, even if the script's last step ended quietly
        // (a wait that the signal cut short): exit as a shell reports it.
        if let Some(signal) = crate::signal::pending() {
            return Ok(128 + signal as i32);
        }
        // The reader of standard output went away, perhaps at the script's very last print:
        // exit as a shell reports a death by SIGPIPE, whatever the last statement was.
        if result.is_ok() && stdout_closed() {
            return Ok(EXIT_PIPE_CLOSED);
        }
        self.outcome(result.map(|()| Dynamic::UNIT), ast.source())
    }

    /// What a script result means to the caller: an exit code, or the rendered error.
    pub fn outcome(
        &self,
        result: Result<Dynamic, Box<EvalAltResult>>,
        source: Option<&str>,
    ) -> Result<i32, ScriptError> {
        match result {
            Ok(_) => Ok(0),
            Err(err) => match exit_request(&err) {
                Some(code) => Ok(code),
                None => {
                    let rendered = diagnostic::render(&err, source, stderr_color());
                    Err(if is_keyboard_interrupt(&err) {
                        ScriptError::KeyboardInterrupt { rendered }
                    } else {
                        ScriptError::Runtime { rendered }
                    })
                }
            },
        }
    }

    /// Compiles and runs a script file with `args` as `ARGS`, as `procscript run` does.
    pub fn run_file(&mut self, path: &Path, args: &[String]) -> Result<i32, ScriptError> {
        self.set_args(args);
        let ast = self.compile_file(path)?;
        self.run_ast(&ast, &mut Scope::new())
    }
}

/// Reads a script file as `fs::read_to_string` does, but stops at Ctrl-C or SIGTERM: a file
/// that never ends (`procscript run /dev/zero`) must not leave the run deaf to them.
fn read_script(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        if crate::signal::pending().is_some() {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Whether an error is an uncaught `KeyboardInterrupt` (which ends a run with 130).
pub fn is_keyboard_interrupt(err: &EvalAltResult) -> bool {
    match err.unwrap_inner() {
        EvalAltResult::ErrorRuntime(value, _) => crate::error::Error::kind_and_message(value)
            .is_some_and(|(kind, _)| kind == crate::error::ErrorKind::KeyboardInterrupt.name()),
        _ => false,
    }
}

/// The end of a run: daemon children are ended and the others waited for; after Ctrl-C or
/// SIGTERM (also one that arrives while waiting), the children get the signal, a grace
/// period, then SIGKILL.
pub fn finish() {
    if crate::signal::pending().is_none() {
        crate::process::finish_children();
    }
    if let Some(signal) = crate::signal::pending() {
        crate::process::end_children(signal);
    }
    crate::progress::finish();
}

/// Blanks a leading `#!` line but keeps the line count, so positions stay right.
fn strip_shebang(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with("#!") {
        let end = text.find('\n').unwrap_or(text.len());
        std::borrow::Cow::Owned(text[end..].to_string())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}
