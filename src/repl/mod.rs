//! The REPL: one scope and one growing set of functions across inputs; each input's
//! statements run once and are then dropped, because running them again would fork again.
//!
//! Every input is compiled as the next lines of one session-long text (`<repl>`), so an
//! error shows its own source line wherever it happens: in this input, in a function
//! defined three inputs ago, or in a child that runs one.

mod helper;

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::output::stderr_color;
use crate::output::{write_line, Stream};
use crate::process::package::exit_request;
use crate::reference::{function_docs, help_for, FnDoc};
use crate::runtime::{Builder, Runtime};
use rhai::{Dynamic, Scope, AST};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use helper::{ReplHelper, Variable};

const PROMPT: &str = "procscript> ";
const MORE: &str = "        ... ";
const SOURCE: &str = "<repl>";

const HELP: &str = "\
Type Rhai statements; they run at once. Functions and variables stay defined.
An unfinished input (an open `{`, `[`, `(` or string) continues on the next line.

  help         this text, then what is defined (also `help()`)
  help NAME    the documentation of a function (Tab completes names)
  dir()        the variables and functions defined so far
  ps           the live children: pid, name, state, age
  quit         leave (so does Ctrl-D); Ctrl-C clears the current input

Tab completes names (yours too) and, after `p.`, what `p` has; Tab twice lists them all.

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
    /// Every input compiled so far, one after the other: the text errors point into.
    transcript: String,
    /// How many lines `transcript` has.
    lines: usize,
}

enum Step {
    Continue,
    Exit(i32),
}

impl Session {
    fn new(builder: Builder) -> Self {
        Self {
            runtime: builder.build(),
            scope: Scope::new(),
            functions: AST::empty(),
            transcript: String::new(),
            lines: 0,
        }
    }

    /// `input` placed after the lines compiled so far, so that its positions are the
    /// session's.
    fn placed(&self, input: &str) -> String {
        let mut text = "\n".repeat(self.lines);
        text.push_str(input);
        text
    }

    /// Registers the session's text with `input` after it, for a diagnostic about `input`.
    fn show_source_with(&self, input: &str) {
        let mut text = self.transcript.clone();
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(input);
        crate::diagnostic::register_source(SOURCE, &text);
    }

    /// Compiles `input`; `None` when it is unfinished and more lines are wanted.
    fn compile(&self, input: &str) -> Option<Result<AST, rhai::ParseError>> {
        let engine = self.runtime.engine();
        let placed = self.placed(input);
        match engine.compile_with_scope(&self.scope, &placed) {
            Err(e) if wants_more(&e, &placed) => None,
            other => Some(other),
        }
    }

    /// Prints a compile error of `input`.
    fn report_parse_error(&self, input: &str, error: rhai::ParseError) {
        self.show_source_with(input);
        let rendered = crate::diagnostic::render(&error.into(), Some(SOURCE), stderr_color());
        let _ = write_line(Stream::Stderr, &rendered);
    }

    fn eval(&mut self, input: &str, ast: AST) -> Step {
        // From now on the input is part of the session's text (a function in it may fail
        // later, in this process or in a child).
        if !self.transcript.is_empty() {
            self.transcript.push('\n');
        }
        self.transcript.push_str(input);
        self.lines += input.split('\n').count();
        crate::diagnostic::register_source(SOURCE, &self.transcript);
        let echo_none = ends_in_plain_value(&ast, input);
        self.functions += ast;
        self.functions.set_source(SOURCE);
        let result = self
            .runtime
            .engine()
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &self.functions);
        self.functions.clear_statements();
        match result {
            Ok(value) => {
                if !value.is_unit() || echo_none {
                    let _ = write_line(Stream::Stdout, &format!("=> {}", show(&value)));
                }
                Step::Continue
            }
            Err(_) if crate::signal::pending().is_some() => {
                // Ctrl-C stopped this input (and, through the terminal, its children); the
                // session goes on.
                crate::signal::clear();
                let _ = write_line(Stream::Stderr, "interrupted");
                Step::Continue
            }
            Err(error) => match exit_request(&error) {
                Some(code) => Step::Exit(code),
                None => {
                    let rendered = crate::diagnostic::render(&error, Some(SOURCE), stderr_color());
                    let _ = write_line(Stream::Stderr, &rendered);
                    Step::Continue
                }
            },
        }
    }

    /// What the completer needs to know about the variables: name, type, and the names
    /// of their fields (a map's keys, an object-style process's fields).
    fn variables(&self) -> Vec<Variable> {
        self.scope
            .iter_raw()
            .map(|(name, _, value)| Variable {
                name: name.to_string(),
                type_name: crate::convert::type_name(value),
                fields: fields_of(value),
            })
            .collect()
    }

    /// The script functions defined so far, as `name(params)`.
    fn function_signatures(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .functions
            .iter_functions()
            .filter(|f| !f.name.starts_with("anon$"))
            .map(|f| {
                (
                    f.name.to_string(),
                    format!("{}({})", f.name, f.params.join(", ")),
                )
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The `dir()` listing: variables with their types, then functions.
    fn dir(&self) -> String {
        let mut variables: Vec<String> = self
            .variables()
            .into_iter()
            .map(|v| format!("{} ({})", v.name, v.type_name))
            .collect();
        variables.sort();
        variables.dedup();
        let functions: Vec<String> = self
            .function_signatures()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "none yet".to_string()
            } else {
                items.join(", ")
            }
        };
        format!(
            "variables: {}\nfunctions: {}\nbuilt in: Process, spawn, socket, Queue, Pool, ... \
             (`help NAME`)",
            list(variables),
            list(functions)
        )
    }
}

/// The names of a value's fields, for completion after `value.`.
fn fields_of(value: &Dynamic) -> Vec<String> {
    if let Some(map) = value.read_lock::<rhai::Map>() {
        return map.keys().map(|k| k.to_string()).collect();
    }
    if let Some(process) = value.read_lock::<crate::process::Process>() {
        if let Some(fields) = process.attachment::<crate::process::package::ObjectFields>() {
            return fields.0.borrow().keys().map(|k| k.to_string()).collect();
        }
    }
    Vec::new()
}

/// Whether the input ends with an expression that names a value (`x`, `p.exitcode`, `()`)
/// rather than a call or a statement: then even `()` is echoed, as `None`. A call that
/// returns nothing (`print(x)`, `p.start()`) echoes nothing, as in Python's REPL.
fn ends_in_plain_value(ast: &AST, input: &str) -> bool {
    use rhai::{Expr, Stmt};
    fn is_call(expr: &Expr) -> bool {
        match expr {
            Expr::FnCall(..) | Expr::MethodCall(..) | Expr::Stmt(..) => true,
            Expr::Dot(x, ..) | Expr::Index(x, ..) => is_call(&x.lhs) || is_call(&x.rhs),
            _ => false,
        }
    }
    if input.trim_end().ends_with(';') {
        return false;
    }
    matches!(ast.statements().last(), Some(Stmt::Expr(expr)) if !is_call(expr))
}

/// A value as the REPL shows it: Rhai's debug form, except that `()` shows as `None`, a
/// blob as Python's bytes, and a process (also inside arrays and maps) as
/// `<Process name=... pid=... started>` rather than a type name.
fn show(value: &Dynamic) -> String {
    if value.is_unit() {
        return crate::builtins::NONE_TEXT.into();
    }
    if let Some(process) = value.read_lock::<crate::process::Process>() {
        return process.to_string();
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return crate::builtins::bytes_repr(&blob);
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        let items: Vec<String> = array.iter().map(show).collect();
        return format!("[{}]", items.join(", "));
    }
    if let Some(map) = value.read_lock::<rhai::Map>() {
        let items: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{k:?}: {}", show(v)))
            .collect();
        return format!("#{{{}}}", items.join(", "));
    }
    crate::convert::without_rust_paths(&format!("{value:?}")).into_owned()
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
    let lines: Vec<&str> = input.split('\n').collect();
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
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Some(((uptime - start_ticks / ticks).max(0.0), state))
}

/// The `ps` command: one line per live child.
fn ps_table() -> String {
    let children = crate::process::active_children();
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

/// A REPL command: the inputs that call it, and what it does with the rest of the input
/// (the name after `help `).
struct Command {
    words: &'static [&'static str],
    run: fn(&mut Repl, &str) -> Step,
}

/// The REPL's own commands; any other input is script.
const COMMANDS: &[Command] = &[
    Command {
        words: &["quit", "exit", "quit()", "exit()"],
        run: |_, _| Step::Exit(0),
    },
    Command {
        words: &["help", "help()"],
        run: |repl, _| repl.say(&format!("{HELP}\n\n{}", repl.session.dir())),
    },
    Command {
        words: &["dir", "dir()"],
        run: |repl, _| repl.say(&repl.session.dir()),
    },
    Command {
        words: &["ps"],
        run: |repl, _| repl.say(&ps_table()),
    },
    Command {
        words: &["help "],
        run: Repl::help_for,
    },
];

/// The command `input` calls, and the rest of the input after its word.
fn command(input: &str) -> Option<(&'static Command, &str)> {
    COMMANDS.iter().find_map(|command| {
        command
            .words
            .iter()
            .find_map(|word| match word.strip_suffix(' ') {
                Some(prefix) => input
                    .strip_prefix(prefix)
                    .filter(|rest| rest.starts_with(' '))
                    .map(|rest| (command, rest.trim())),
                None => (input == *word).then_some((command, "")),
            })
    })
}

/// A REPL session at the terminal: the script session, the documentation `help NAME`
/// shows, what the completer knows, and the lines of an unfinished input.
struct Repl {
    session: Session,
    docs: Vec<FnDoc>,
    state: std::rc::Rc<std::cell::RefCell<helper::State>>,
    buffer: String,
}

impl Repl {
    /// The prompt: a fresh one, or the one that continues an unfinished input.
    fn prompt(&self) -> &'static str {
        if self.buffer.is_empty() {
            PROMPT
        } else {
            MORE
        }
    }

    /// Prints `text` on stdout.
    fn say(&mut self, text: &str) -> Step {
        let _ = write_line(Stream::Stdout, text);
        Step::Continue
    }

    /// `help NAME`: every overload of `name` with its documentation.
    fn help_for(&mut self, name: &str) -> Step {
        let _ = match help_for(&self.docs, name) {
            Some(text) => write_line(Stream::Stdout, &text),
            None => write_line(
                Stream::Stderr,
                &format!("no procscript function named `{name}`"),
            ),
        };
        Step::Continue
    }

    /// Adds a typed line to the input; the input to act on, `None` when it is empty.
    fn push_line(&mut self, line: &str) -> Option<String> {
        if !self.buffer.is_empty() {
            self.buffer.push('\n');
        }
        self.buffer.push_str(line);
        let input = self.buffer.trim().to_string();
        if input.is_empty() {
            self.buffer.clear();
            return None;
        }
        Some(input)
    }

    /// Acts on the whole input: a command, or script, which is compiled and run once it is
    /// finished (an unfinished one waits for more lines).
    fn act(&mut self, input: &str) -> Step {
        let step = match command(input) {
            Some((command, rest)) => (command.run)(self, rest),
            None => {
                let script = self.buffer.clone();
                match self.session.compile(&script) {
                    None => return Step::Continue,
                    Some(Err(error)) => {
                        self.session.report_parse_error(&script, error);
                        Step::Continue
                    }
                    Some(Ok(ast)) => {
                        let step = self.session.eval(&script, ast);
                        self.state
                            .borrow_mut()
                            .update(self.session.variables(), self.session.function_signatures());
                        step
                    }
                }
            }
        };
        self.buffer.clear();
        step
    }

    /// What a failed read means: Ctrl-C clears the input; the end of input ends the REPL
    /// (saying so if it ended inside an unfinished statement); other errors end it with 1.
    fn read_failed(&mut self, error: ReadlineError) -> Step {
        match error {
            ReadlineError::Interrupted => self.buffer.clear(),
            // SIGINT while waiting for input that is not a terminal: clear the line, as
            // Ctrl-C does on a terminal.
            ReadlineError::Errno(e) if e as i32 == libc::EINTR => self.buffer.clear(),
            ReadlineError::Io(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                self.buffer.clear()
            }
            ReadlineError::Eof => {
                if !self.buffer.trim().is_empty() {
                    if let Some(error) = compile_anyway(&self.session, &self.buffer) {
                        self.session.report_parse_error(&self.buffer, error);
                    }
                }
                return Step::Exit(0);
            }
            error => {
                let _ = write_line(Stream::Stderr, &format!("error: reading input: {error}"));
                return Step::Exit(1);
            }
        }
        Step::Continue
    }
}

/// The line editor, with the completer and the history of earlier sessions.
fn editor(helper: ReplHelper) -> Option<Editor<ReplHelper, DefaultHistory>> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .build();
    let mut editor = Editor::<ReplHelper, DefaultHistory>::with_config(config).ok()?;
    editor.set_helper(Some(helper));
    Some(editor)
}

/// Runs the REPL until `quit`, Ctrl-D or `exit(n)`; returns the exit code.
pub(crate) fn run(builder: Builder) -> i32 {
    let session = Session::new(builder);
    let docs: Vec<FnDoc> = function_docs(session.runtime.engine());
    let color = crate::output::color_allowed() && std::io::stdout().is_terminal();
    let helper = ReplHelper::new(session.runtime.engine(), color);
    let state = helper.state.clone();
    let Some(mut editor) = editor(helper) else {
        let _ = write_line(Stream::Stderr, "error: cannot start the line editor");
        return 1;
    };
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
    let mut repl = Repl {
        session,
        docs,
        state,
        buffer: String::new(),
    };
    let code = loop {
        // A Ctrl-C that arrived between inputs must not stop the next one.
        crate::signal::clear();
        let step = match editor.readline(repl.prompt()) {
            Ok(line) => match repl.push_line(&line) {
                Some(input) => {
                    let _ = editor.add_history_entry(input.as_str());
                    repl.act(&input)
                }
                None => Step::Continue,
            },
            Err(error) => repl.read_failed(error),
        };
        if let Step::Exit(code) = step {
            break code;
        }
    };
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    say_who_is_waited_for();
    crate::runtime::finish();
    match crate::signal::pending() {
        Some(signal) => 128 + signal as i32,
        None => code,
    }
}

/// The parse error of an input that ended unfinished.
fn compile_anyway(session: &Session, input: &str) -> Option<rhai::ParseError> {
    session
        .runtime
        .engine()
        .compile_with_scope(&session.scope, session.placed(input))
        .err()
}

/// Before the REPL waits for its children at the end, says how many and how to stop them.
fn say_who_is_waited_for() {
    let waited = crate::process::active_children()
        .iter()
        .filter(|c| !c.daemon())
        .count();
    if waited > 0 {
        let plural = if waited == 1 { "" } else { "ren" };
        let _ = write_line(
            Stream::Stderr,
            &format!("waiting for {waited} child{plural} (Ctrl-C to end them)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_echo_none_and_calls_do_not() {
        let engine = rhai::Engine::new();
        let ends = |input: &str| ends_in_plain_value(&engine.compile(input).unwrap(), input);
        assert!(ends("x"));
        assert!(ends("()"));
        assert!(ends("let a = 1; a"));
        assert!(ends("m.field"));
        assert!(!ends("x;"));
        assert!(!ends("print(1)"));
        assert!(!ends("p.start()"));
        assert!(!ends("let a = 1"));
    }

    #[test]
    fn commands_are_told_from_script() {
        let word = |input: &str| command(input).map(|(c, rest)| (c.words[0], rest.to_string()));
        assert_eq!(word("dir()"), Some(("dir", String::new())));
        assert_eq!(word("help()"), Some(("help", String::new())));
        assert_eq!(word("help join"), Some(("help ", "join".to_string())));
        assert_eq!(word("help   join"), Some(("help ", "join".to_string())));
        assert_eq!(word("exit"), Some(("quit", String::new())));
        assert_eq!(word("help_me()"), None);
        assert_eq!(word("helpjoin"), None);
    }
}
