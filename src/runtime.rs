//! Assembles the engine and runs a script file the way the `procscript` binary does,
//! end-of-script policy included; [`Builder`] carries what the binary's flags set.

use std::path::{Path, PathBuf};

use rhai::packages::Package;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Module, Scope, AST};

use crate::diagnostic::{self, line_map, Diagnostic};
use crate::error::Error;
use crate::output::{self, Stream};
use crate::process::package::exit_request;
use crate::trace;

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

/// Adds procscript's packages, syntax and hooks to an engine.
///
/// Keeps the engine's optimization level at `Simple`: `Full` would fold calls such as
/// `getpid()` into constants at compile time.
pub(crate) fn install(engine: &mut Engine) {
    crate::process::prepare();
    set_limits(engine);
    engine.set_optimization_level(rhai::OptimizationLevel::Simple);
    crate::package::ProcscriptPackage::new().register_into_engine(engine);
    engine.on_print(|text| {
        output::print(text, || {
            (crate::process::my_name(), crate::process::my_pid().as_raw())
        });
    });
    engine.on_debug(|text, source, pos| {
        let text = match (source, pos.line()) {
            (Some(source), Some(line)) => {
                let line = line_map::original(source, line, pos.position().unwrap_or(1))
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
        output::stdout_closed().then(|| Dynamic::from_int(output::EXIT_PIPE_CLOSED.into()))
    });
}

/// How a script run ended, when it did not succeed. A script's own error carries a
/// [`Diagnostic`]: the edge (the binary, a host) renders it, with colour where it wants.
#[derive(Debug)]
pub enum ScriptError {
    /// The file could not be read.
    Read {
        /// The script's path.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The script did not compile.
    Syntax(Diagnostic),
    /// An uncaught error ended the script.
    Runtime(Diagnostic),
    /// An uncaught `KeyboardInterrupt` (Ctrl-C at an `input()` prompt) ended the script.
    KeyboardInterrupt(Diagnostic),
    /// The run's trace or timeline could not be written ([`Builder::trace`]); `script` is
    /// the script's own error, if it failed too.
    Trace {
        /// Why the file could not be written, or was refused.
        error: Error,
        /// The script's own error, if it also failed.
        script: Option<Box<ScriptError>>,
    },
}

impl ScriptError {
    /// The exit status the binary uses: 2 for a file that cannot be read or compiled, 1 for
    /// an uncaught error or a trace that cannot be written, 130 for `KeyboardInterrupt`.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Read { .. } | Self::Syntax(_) => 2,
            Self::Runtime(_) | Self::Trace { .. } => 1,
            Self::KeyboardInterrupt(_) => 130,
        }
    }

    /// Where the script went wrong, for a compile or runtime error.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            Self::Syntax(d) | Self::Runtime(d) | Self::KeyboardInterrupt(d) => Some(d),
            Self::Read { .. } | Self::Trace { .. } => None,
        }
    }

    /// The error as the binary prints it, with ANSI colour when `color` is true (the
    /// binary asks for it when stderr is a terminal and `NO_COLOR` is unset).
    pub fn render(&self, color: bool) -> String {
        match self {
            Self::Read { path, error } => format!("error: cannot read `{path}`: {error}"),
            Self::Syntax(d) | Self::Runtime(d) | Self::KeyboardInterrupt(d) => d.render(color),
            Self::Trace { error, script } => match script {
                Some(script) => format!("{}\nerror: {error}", script.render(color)),
                None => format!("error: {error}"),
            },
        }
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for ScriptError {}

/// Sets up a [`Runtime`]: what the `procscript` binary's flags set. Most settings are for
/// the whole process (and the processes it forks), applied by [`Builder::build`] before any
/// script runs.
///
/// ```no_run
/// let mut runtime = procscript::Runtime::builder()
///     .labels(true)          // `--label`: [Process-1 4242] lines
///     .max_procs(64)         // `--max-procs 64`
///     .handle_signals(true)  // Ctrl-C and SIGTERM end the script and its children
///     .build();
/// let code = runtime
///     .run_file("scripts/join.rhai".as_ref(), &[])
///     .unwrap_or_else(|e| {
///         eprintln!("{e}");
///         e.exit_code()
///     });
/// std::process::exit(code);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Builder {
    labels: bool,
    max_procs: usize,
    progress: bool,
    trace: Option<PathBuf>,
    timeline: Option<PathBuf>,
    handle_signals: bool,
    large_stack: bool,
    std_streams_unused: bool,
    huge_text: Option<bool>,
}

impl Builder {
    /// Prefixes every printed line with the printing process's name and pid
    /// (`[Process-1 4242] alex is piaoing`), coloured per process when stdout is a terminal
    /// and `NO_COLOR` is unset (`--label`).
    pub fn labels(mut self, on: bool) -> Self {
        self.labels = on;
        self
    }

    /// Caps the live processes of the whole run, the main process aside, at `max`; a
    /// `start` past the cap, in any process of the tree, is a `ProcessError`. 0: no cap
    /// (`--max-procs`).
    pub fn max_procs(mut self, max: usize) -> Self {
        self.max_procs = max;
        self
    }

    /// Shows a bar of children finished out of started on stderr, when it is a terminal
    /// (`--progress`).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Records every process of a [`Runtime::run_file`] (tree, times, CPU, memory, exit)
    /// and writes it to `path` as YAML at the end (`--trace`).
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    /// Draws the processes of a [`Runtime::run_file`] on a timeline, written to `path` as
    /// SVG at the end (`--timeline`).
    pub fn timeline(mut self, path: impl Into<PathBuf>) -> Self {
        self.timeline = Some(path.into());
        self
    }

    /// Installs procscript's SIGINT and SIGTERM handlers: the script stops at its next
    /// check, its children get the signal, a grace period, then SIGKILL, and the run exits
    /// with 128 + the signal, as a shell reports it. A signal the process was started
    /// ignoring stays ignored.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// Lets the main thread's stack grow to 1 GiB (`RLIMIT_STACK`), so that values nested
    /// thousands deep can be cloned and compared; programs a script runs get the original
    /// limit back. Only before any other thread exists.
    pub fn large_stack(mut self, on: bool) -> Self {
        self.large_stack = on;
        self
    }

    /// Promises that nothing writes through Rust's `std::io::stdout()`/`stderr()`
    /// (`print!`, `eprintln!`) while scripts run, so forks need not flush them (each flush
    /// costs a page fault in both processes after every fork). The binary promises it; a
    /// host that prints that way must not.
    pub fn std_streams_unused(mut self, unused: bool) -> Self {
        self.std_streams_unused = unused;
        self
    }

    /// Whether procscript may move the executable's code onto transparent huge pages after
    /// 16 forks (default: yes, unless `PROCSCRIPT_HUGE_TEXT=0`); see docs/performance.md.
    pub fn huge_text(mut self, on: bool) -> Self {
        self.huge_text = Some(on);
        self
    }

    /// Applies the process-wide settings and makes the runtime.
    pub fn build(self) -> Runtime {
        self.apply();
        let mut engine = Engine::new();
        install(&mut engine);
        Runtime {
            engine,
            trace: self.trace,
            timeline: self.timeline,
        }
    }

    /// Applies the process-wide settings only (signal handlers, stack, labels, the cap,
    /// the bar), for a program that does other work before it makes a runtime.
    pub fn apply(&self) {
        if self.handle_signals {
            crate::signal::install_termination_handlers();
        }
        if self.large_stack {
            crate::process::fork::raise_stack_limit();
        }
        output::set_labels(self.labels);
        if self.std_streams_unused {
            output::std_streams_unused();
        }
        if let Some(on) = self.huge_text {
            crate::process::hugetext::set_enabled(on);
        }
        crate::process::set_max_children(self.max_procs);
        if self.progress {
            crate::progress::enable();
        }
    }
}

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
    trace: Option<PathBuf>,
    timeline: Option<PathBuf>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A runtime on a standard Rhai engine with every procscript package installed, and
    /// the process-wide settings left as they are.
    pub fn new() -> Self {
        let mut engine = Engine::new();
        install(&mut engine);
        Self {
            engine,
            trace: None,
            timeline: None,
        }
    }

    /// A [`Builder`], to set what the binary's flags set.
    pub fn builder() -> Builder {
        Builder::default()
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
        let packed = line_map::too_long(&body)
            .then(|| line_map::pack(&body))
            .flatten();
        line_map::register(name, packed.as_ref().map(|(_, map)| map.clone()));
        if let Some((copy, _)) = packed {
            body = std::borrow::Cow::Owned(copy);
        }
        let mut ast = self
            .engine
            .compile(body)
            .map_err(|e| ScriptError::Syntax(Diagnostic::of(&e.into(), Some(name))))?;
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
        if result.is_ok() && output::stdout_closed() {
            return Ok(output::EXIT_PIPE_CLOSED);
        }
        self.outcome(result.map(|()| Dynamic::UNIT), ast.source())
    }

    /// What a script result means to the caller: an exit code, or the script's error.
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
                    let diagnostic = Diagnostic::of(&err, source);
                    Err(if is_keyboard_interrupt(&err) {
                        ScriptError::KeyboardInterrupt(diagnostic)
                    } else {
                        ScriptError::Runtime(diagnostic)
                    })
                }
            },
        }
    }

    /// Compiles and runs a script file with `args` as `ARGS`, as `procscript run` does;
    /// with [`Builder::trace`] or [`Builder::timeline`], records the run and writes them.
    pub fn run_file(&mut self, path: &Path, args: &[String]) -> Result<i32, ScriptError> {
        if self.trace.is_none() && self.timeline.is_none() {
            return self.run_untraced(path, args);
        }
        self.run_traced(path, args)
    }

    fn run_untraced(&mut self, path: &Path, args: &[String]) -> Result<i32, ScriptError> {
        self.set_args(args);
        let ast = self.compile_file(path)?;
        self.run_ast(&ast, &mut Scope::new())
    }

    /// A run recorded for `--trace` and `--timeline`: outputs that would overwrite the
    /// script are refused before anything runs, and written once the run has ended.
    fn run_traced(&mut self, path: &Path, args: &[String]) -> Result<i32, ScriptError> {
        let outputs = [
            (self.trace.clone(), "trace"),
            (self.timeline.clone(), "timeline"),
        ];
        let refused = |error| ScriptError::Trace {
            error,
            script: None,
        };
        for (output, what) in &outputs {
            if let Some(output) = output {
                trace::refuse_overwrite(output, path, what).map_err(refused)?;
            }
        }
        let tracing = trace::Tracing::start(&path.display().to_string()).map_err(refused)?;
        let result = self.run_untraced(path, args);
        let code = match &result {
            Ok(code) => *code,
            Err(error) => error.exit_code(),
        };
        let written = tracing.finish(code).and_then(|recorded| {
            if let Some(path) = &self.trace {
                trace::write_yaml(&recorded, path)?;
                trace::announce("trace", path);
            }
            if let Some(path) = &self.timeline {
                trace::write_output(path, trace::timeline::render(&recorded).as_bytes())?;
                trace::announce("timeline", path);
            }
            Ok(())
        });
        match written {
            Ok(()) => result,
            Err(error) => Err(ScriptError::Trace {
                error,
                script: result.err().map(Box::new),
            }),
        }
    }
}

/// Reads a script file as `fs::read_to_string` does, but stops at Ctrl-C or SIGTERM: a file
/// that never ends (`procscript run /dev/zero`) must not leave the run deaf to them.
fn read_script(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    // A mebibyte at a time, straight into `bytes`, looking for a signal in between.
    loop {
        if crate::signal::pending().is_some() {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        if (&mut file).take(1 << 20).read_to_end(&mut bytes)? == 0 {
            break;
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
pub(crate) fn is_keyboard_interrupt(err: &EvalAltResult) -> bool {
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
