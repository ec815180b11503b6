//! The REPL: one scope and one growing set of functions across inputs; each input's
//! statements run once and are then dropped, because running them again would fork again.

mod helper;

use std::io::IsTerminal;
use std::path::PathBuf;

use procscript::output::{write_line, Stream};
use procscript::process::package::exit_request;
use procscript::reference::{function_docs, help_for, FnDoc};
use procscript::runtime::stderr_color;
use procscript::Runtime;
use rhai::{Dynamic, Scope, AST};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;

use helper::ReplHelper;

const PROMPT: &str = "procscript> ";
const MORE: &str = "        ... ";
const SOURCE: &str = "<repl>";

const HELP: &str = "\
Type Rhai statements; they run at once. Functions and variables stay defined.
An unfinished input (an open `{`, `[`, `(` or string) continues on the next line.

  help         this text
  help NAME    the documentation of a function (Tab completes names)
  ps           the live children: pid, name, state, age
  quit         leave (so does Ctrl-D); Ctrl-C clears the current input

Try:
  fn task(name) { print(`${name} is running`); sleep(1); }
  let p = Process(task, [\"safly\"]); p.start();
  p.join()
  active_children()

When the REPL ends, daemon children are ended and the others waited for.
The full reference is docs/reference.md.";

fn history_path() -> Option<PathBuf> {
    let dir = dirs::data_dir()?.join("procscript");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history.txt"))
}

struct Session {
    runtime: Runtime,
    scope: Scope<'static>,
    functions: AST,
}

enum Step {
    Continue,
    Exit(i32),
}

impl Session {
    fn new() -> Self {
        Self {
            runtime: Runtime::new(),
            scope: Scope::new(),
            functions: AST::empty(),
        }
    }

    /// Compiles `input`; `None` when it is unfinished and more lines are wanted.
    fn compile(&self, input: &str) -> Option<Result<AST, rhai::ParseError>> {
        let engine = self.runtime.engine();
        match engine.compile_with_scope(&self.scope, input) {
            Err(e) if wants_more(&e, input) => None,
            other => Some(other),
        }
    }

    fn eval(&mut self, input: &str, ast: AST) -> Step {
        procscript::diagnostic::register_source(SOURCE, input);
        let mut ast = ast;
        ast.set_source(SOURCE);
        self.functions += ast;
        let result = self
            .runtime
            .engine()
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &self.functions);
        self.functions.clear_statements();
        match result {
            Ok(value) => {
                if !value.is_unit() {
                    let shown = show(self.runtime.engine(), &value);
                    let _ = write_line(Stream::Stdout, &format!("=> {shown}"));
                }
                Step::Continue
            }
            Err(_) if procscript::signal::pending().is_some() => {
                // Ctrl-C stopped this input (and, through the terminal, its children); the
                // session goes on.
                procscript::signal::clear();
                let _ = write_line(Stream::Stderr, "interrupted");
                Step::Continue
            }
            Err(error) => match exit_request(&error) {
                Some(code) => Step::Exit(code),
                None => {
                    let rendered =
                        procscript::diagnostic::render(&error, Some(SOURCE), stderr_color());
                    let _ = write_line(Stream::Stderr, &rendered);
                    Step::Continue
                }
            },
        }
    }
}

/// A value as the REPL shows it: Rhai's debug form, except that processes (also inside
/// arrays and maps) show as `<Process name=... pid=... started>` rather than a type name.
fn show(engine: &rhai::Engine, value: &Dynamic) -> String {
    if let Some(process) = value.read_lock::<procscript::Process>() {
        return process.to_string();
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        let items: Vec<String> = array.iter().map(|v| show(engine, v)).collect();
        return format!("[{}]", items.join(", "));
    }
    if let Some(map) = value.read_lock::<rhai::Map>() {
        let items: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{k:?}: {}", show(engine, v)))
            .collect();
        return format!("#{{{}}}", items.join(", "));
    }
    engine.map_type_name(&format!("{value:?}")).to_string()
}

/// Whether a parse error means the input is unfinished: an open bracket or string, or
/// any error found at the very end of the input (a statement still being typed).
fn wants_more(error: &rhai::ParseError, input: &str) -> bool {
    use rhai::{LexError, ParseErrorType};
    match error.err_type() {
        ParseErrorType::MissingToken(token, _) if matches!(token.as_str(), "}" | "]" | ")") => true,
        ParseErrorType::UnexpectedEOF | ParseErrorType::BadInput(LexError::UnterminatedString) => {
            true
        }
        _ => is_at_end(error.position(), input),
    }
}

/// Whether `pos` lies past the last character of `input`.
fn is_at_end(pos: rhai::Position, input: &str) -> bool {
    let (Some(line), column) = (pos.line(), pos.position().unwrap_or(usize::MAX)) else {
        return true;
    };
    let lines: Vec<&str> = input.lines().collect();
    let last = lines.len().max(1);
    line > last || (line == last && column > lines.get(last - 1).map_or(0, |l| l.chars().count()))
}

/// Age in seconds and state letter of a process, from `/proc/<pid>/stat`.
fn proc_age_and_state(pid: i32) -> Option<(f64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of stat (index 19 after the name): start time in clock ticks since boot.
    let start_ticks: f64 = fields.get(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(((uptime - start_ticks / ticks).max(0.0), state))
}

/// The `ps` command: one line per live child.
fn ps_table() -> String {
    let children = procscript::process::active_children();
    if children.is_empty() {
        return "no live children".into();
    }
    let mut out = format!("{:>8}  {:<20} {:<6} {:>8}", "PID", "NAME", "STATE", "AGE");
    for child in children {
        let pid = child.pid().map_or(0, |p| p.as_raw());
        let (age, state) = proc_age_and_state(pid).unwrap_or((0.0, '?'));
        let daemon = if child.daemon() { " (daemon)" } else { "" };
        out.push_str(&format!(
            "\n{pid:>8}  {:<20} {state:<6} {age:>7.1}s{daemon}",
            child.name()
        ));
    }
    out
}

/// Runs the REPL until `quit`, Ctrl-D or `exit(n)`; returns the exit code.
pub fn run() -> i32 {
    let mut session = Session::new();
    let docs: Vec<FnDoc> = function_docs(session.runtime.engine());
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();
    let helper = ReplHelper::new(docs.iter().map(|d| d.name.clone()).collect(), color);
    let variables = helper.variables.clone();
    let Ok(mut editor) = Editor::<ReplHelper, DefaultHistory>::new() else {
        let _ = write_line(Stream::Stderr, "error: cannot start the line editor");
        return 1;
    };
    editor.set_helper(Some(helper));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let _ = write_line(
        Stream::Stdout,
        &format!(
            "procscript {} REPL: `help` for help, `quit` or Ctrl-D to leave",
            env!("CARGO_PKG_VERSION")
        ),
    );
    let mut buffer = String::new();
    let code = loop {
        let prompt = if buffer.is_empty() { PROMPT } else { MORE };
        // A Ctrl-C that arrived between inputs must not stop the next one.
        procscript::signal::clear();
        match editor.readline(prompt) {
            Ok(line) => {
                if !buffer.is_empty() {
                    buffer.push('\n');
                }
                buffer.push_str(&line);
                let input = buffer.trim();
                if input.is_empty() {
                    buffer.clear();
                    continue;
                }
                let _ = editor.add_history_entry(input);
                match input {
                    "quit" | "exit" => break 0,
                    "help" => {
                        let _ = write_line(Stream::Stdout, HELP);
                        buffer.clear();
                        continue;
                    }
                    "ps" => {
                        let _ = write_line(Stream::Stdout, &ps_table());
                        buffer.clear();
                        continue;
                    }
                    _ => {}
                }
                if let Some(name) = input.strip_prefix("help ").map(str::trim) {
                    match help_for(&docs, name) {
                        Some(text) => write_line(Stream::Stdout, &text),
                        None => write_line(
                            Stream::Stderr,
                            &format!("no procscript function named `{name}`"),
                        ),
                    }
                    .ok();
                    buffer.clear();
                    continue;
                }
                let input = buffer.clone();
                match session.compile(&input) {
                    None => continue,
                    Some(Err(error)) => {
                        procscript::diagnostic::register_source(SOURCE, &input);
                        let rendered = procscript::diagnostic::render(
                            &error.into(),
                            Some(SOURCE),
                            stderr_color(),
                        );
                        let _ = write_line(Stream::Stderr, &rendered);
                    }
                    Some(Ok(ast)) => {
                        let step = session.eval(&input, ast);
                        *variables.borrow_mut() = session
                            .scope
                            .iter()
                            .map(|(name, ..)| name.to_string())
                            .collect();
                        if let Step::Exit(code) = step {
                            buffer.clear();
                            break code;
                        }
                    }
                }
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            // SIGINT while waiting for input that is not a terminal: clear the line, as Ctrl-C
            // does on a terminal.
            Err(ReadlineError::Errno(e)) if e as i32 == libc::EINTR => buffer.clear(),
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                buffer.clear()
            }
            Err(ReadlineError::Eof) => {
                if !buffer.trim().is_empty() {
                    // The input ended inside an unfinished statement: say so.
                    if let Err(error) = session
                        .runtime
                        .engine()
                        .compile_with_scope(&session.scope, &buffer)
                    {
                        procscript::diagnostic::register_source(SOURCE, &buffer);
                        let _ = write_line(
                            Stream::Stderr,
                            &procscript::diagnostic::render(
                                &error.into(),
                                Some(SOURCE),
                                stderr_color(),
                            ),
                        );
                    }
                }
                break 0;
            }
            Err(error) => {
                let _ = write_line(Stream::Stderr, &format!("error: reading input: {error}"));
                break 1;
            }
        }
    };
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    procscript::runtime::finish();
    code
}
