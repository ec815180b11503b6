//! The REPL: one scope and one growing set of functions across inputs; each input's
//! statements run once and are then dropped, because running them again would fork again.

use std::path::PathBuf;

use procscript::output::{write_line, Stream};
use procscript::process::package::exit_request;
use procscript::runtime::stderr_color;
use procscript::Runtime;
use rhai::{Dynamic, Scope, AST};
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

const PROMPT: &str = "procscript> ";
const MORE: &str = "        ... ";
const SOURCE: &str = "<repl>";

const HELP: &str = "\
Type Rhai statements; they run at once. Functions and variables stay defined.
An unfinished input (an open `{`, `[`, `(` or string) continues on the next line.

  help     this text
  quit     leave (so does Ctrl-D); Ctrl-C clears the current input

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
        Self { runtime: Runtime::new(), scope: Scope::new(), functions: AST::empty() }
    }

    /// Compiles `input`; `None` when it is unfinished and more lines are wanted.
    fn compile(&self, input: &str) -> Option<Result<AST, rhai::ParseError>> {
        let engine = self.runtime.engine();
        match engine.compile_with_scope(&self.scope, input) {
            Err(e) if wants_more(&e) => None,
            other => Some(other),
        }
    }

    fn eval(&mut self, input: &str, ast: AST) -> Step {
        procscript::diagnostic::register_source(SOURCE, input);
        let mut ast = ast;
        ast.set_source(SOURCE);
        self.functions += ast;
        let result = self.runtime.engine().eval_ast_with_scope::<Dynamic>(&mut self.scope, &self.functions);
        self.functions.clear_statements();
        match result {
            Ok(value) => {
                if !value.is_unit() {
                    let _ = write_line(Stream::Stdout, &format!("=> {value:?}"));
                }
                Step::Continue
            }
            Err(error) => match exit_request(&error) {
                Some(code) => Step::Exit(code),
                None => {
                    let rendered = procscript::diagnostic::render(&error, Some(SOURCE), stderr_color());
                    let _ = write_line(Stream::Stderr, &rendered);
                    Step::Continue
                }
            },
        }
    }
}

fn wants_more(error: &rhai::ParseError) -> bool {
    use rhai::{LexError, ParseErrorType};
    match error.err_type() {
        ParseErrorType::MissingToken(token, _) => matches!(token.as_str(), "}" | "]" | ")"),
        ParseErrorType::UnexpectedEOF => true,
        ParseErrorType::BadInput(LexError::UnterminatedString) => true,
        _ => false,
    }
}

/// Runs the REPL until `quit`, Ctrl-D or `exit(n)`; returns the exit code.
pub fn run() -> i32 {
    let Ok(mut editor) = DefaultEditor::new() else {
        let _ = write_line(Stream::Stderr, "error: cannot start the line editor");
        return 1;
    };
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let _ = write_line(
        Stream::Stdout,
        &format!("procscript {} REPL: `help` for help, `quit` or Ctrl-D to leave", env!("CARGO_PKG_VERSION")),
    );
    let mut session = Session::new();
    let mut buffer = String::new();
    let code = loop {
        let prompt = if buffer.is_empty() { PROMPT } else { MORE };
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
                    _ => {}
                }
                let input = buffer.clone();
                match session.compile(&input) {
                    None => continue,
                    Some(Err(error)) => {
                        procscript::diagnostic::register_source(SOURCE, &input);
                        let rendered = procscript::diagnostic::render(&error.into(), Some(SOURCE), stderr_color());
                        let _ = write_line(Stream::Stderr, &rendered);
                    }
                    Some(Ok(ast)) => {
                        if let Step::Exit(code) = session.eval(&input, ast) {
                            buffer.clear();
                            break code;
                        }
                    }
                }
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break 0,
            Err(error) => {
                let _ = write_line(Stream::Stderr, &format!("error: reading input: {error}"));
                break 1;
            }
        }
    };
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    procscript::process::finish_children();
    code
}
