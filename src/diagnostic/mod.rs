//! Script errors as data and as people read them.
//!
//! [`Diagnostic::of`] finds the spot in Rhai's nested errors: the message, the file, line
//! and column, the chain of calls that led there, and hints for Python habits. The edge (the
//! binary, the REPL, a child that dies of an uncaught error) renders it: the message, then
//! `file:line:col`, the source line and a caret under the spot, then the calls and hints.
//! Rendering is codespan-reporting's; this module keeps the source text of every compiled
//! script so a child process, which fails far from where its code was read, can still show
//! the line.

pub(crate) mod excerpt;
pub(crate) mod line_map;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use codespan_reporting::diagnostic::Label;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};
use rhai::{EvalAltResult, Position};

use crate::error::Error;

thread_local! {
    static SOURCES: RefCell<HashMap<String, Rc<str>>> = RefCell::new(HashMap::new());
}

/// Remembers the text of a script under the name its errors will carry.
pub(crate) fn register_source(name: &str, text: &str) {
    SOURCES.with(|s| s.borrow_mut().insert(name.to_string(), Rc::from(text)));
}

/// The text registered under `name` (what a remote pool worker is sent).
pub(crate) fn source_text(name: &str) -> Option<Rc<str>> {
    SOURCES.with(|s| s.borrow().get(name).cloned())
}

/// A script error as data: what went wrong, where, the calls that led there and any hints.
/// [`Diagnostic::render`] shows it with the source line and a caret; `Display` shows it so
/// without colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The message without its position.
    pub(crate) message: String,
    /// The script it happened in, when known.
    pub(crate) source: Option<String>,
    /// The spot in the compiled text (1-based line and column), when known.
    pub(crate) position: Position,
    /// Calls that led there, outermost first: `in call to `f` at file:line:col`.
    pub(crate) calls: Vec<String>,
    /// Hints, each with its label: `hint: ...`, `help: ...`.
    pub(crate) hints: Vec<String>,
}

impl Diagnostic {
    /// Finds the innermost spot of an error raised while running `source` (a script's name).
    pub(crate) fn of(err: &EvalAltResult, source: Option<&str>) -> Self {
        locate(err, source)
    }

    /// The message, without its position (`ValueError: ...`, `Variable not found: x`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The script's name (its path, `<repl>`), when known.
    pub fn file(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The 1-based line and column in the script as written, when known.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        let (line, column) = (self.position.line()?, self.position.position().unwrap_or(1));
        let file = self.source.as_deref().unwrap_or("<script>");
        Some(line_map::original(file, line, column).unwrap_or((line, column)))
    }

    /// The calls that led to the error, outermost first (`in call to `f` at file:3:5`).
    pub fn calls(&self) -> &[String] {
        &self.calls
    }

    /// Hints, each with its label (`help: functions are written with `fn`: ...`).
    pub fn hints(&self) -> &[String] {
        &self.hints
    }

    /// The error as people read it: the message, `file:line:col`, the source line with a
    /// caret, then the calls and hints; with ANSI colour when `color` is true.
    pub fn render(&self, color: bool) -> String {
        render_located(self, color)
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// The one-line message of an error, without position: procscript's own errors as
/// `Kind: message`, Rhai's in its words.
pub(crate) fn message(err: &EvalAltResult) -> String {
    let text = raw_message(err);
    crate::convert::without_rust_paths(&text).into_owned()
}

fn raw_message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => match Error::kind_and_message(value) {
            Some((kind, message)) => format!("{kind}: {message}"),
            None if value.is_string() => format!("uncaught exception: {value}"),
            None => format!("uncaught exception: {value:?}"),
        },
        EvalAltResult::ErrorParsing(kind, _) => format!("syntax error: {kind}"),
        other => {
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(cut) if text.ends_with(')') => text[..cut].to_string(),
                _ => text,
            }
        }
    }
}

fn display_fn_name(name: &str) -> String {
    if name.starts_with("anon$") {
        "a closure".into()
    } else {
        format!("`{name}`")
    }
}

fn at(source: Option<&str>, pos: Position) -> String {
    let file = source.unwrap_or("<script>");
    if let (Some(line), Some(col)) = (pos.line(), pos.position()) {
        if let Some((line, col)) = line_map::original(file, line, col) {
            return format!("{file}:{line}:{col}");
        }
    }
    match (pos.line(), pos.position()) {
        (Some(line), Some(col)) => format!("{file}:{line}:{col}"),
        (Some(line), None) => format!("{file}:{line}"),
        _ => file.to_string(),
    }
}

/// Finds the innermost spot of an error raised while running `source`.
fn locate(err: &EvalAltResult, source: Option<&str>) -> Diagnostic {
    let mut calls = Vec::new();
    let mut source = source.map(str::to_string);
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(name, fn_source, inner, pos) => {
                calls.push(format!(
                    "in call to {} at {}",
                    display_fn_name(name),
                    at(source.as_deref(), *pos)
                ));
                if !fn_source.is_empty() {
                    source = Some(fn_source.clone());
                }
                err = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                calls.push(format!(
                    "in module `{name}` imported at {}",
                    at(source.as_deref(), *pos)
                ));
                source = Some(name.clone());
                err = inner;
            }
            _ => break,
        }
    }
    calls.reverse();
    let mut hints = Vec::new();
    if matches!(err, EvalAltResult::ErrorDataRace(..)) {
        hints.push(
            "hint: a closure read a variable that a method call was holding, typically the \
             variable with its own process handle during `p.start()`; in the child use \
             `current_process()`, or call `start(p)` instead of `p.start()`"
                .into(),
        );
    }
    let message = message(err);
    let position = err.position();
    let text = source.as_deref().and_then(source_text);
    if let Some(help) = python_hint(&message, text.as_deref(), position.line()) {
        hints.push(format!("help: {help}"));
    }
    Diagnostic {
        message,
        source,
        position,
        calls,
        hints,
    }
}

/// One line of help for a Python habit that Rhai rejects (keyword arguments, `import os`,
/// `def`, `True`/`None`, f-strings, `:` blocks ...), found on the error's line or the line
/// before it (`import os` fails only at the next line). `None` when nothing fits.
pub(crate) fn python_hint(
    message: &str,
    text: Option<&str>,
    line: Option<usize>,
) -> Option<String> {
    let lines: Vec<&str> = text.map(|t| t.lines().collect()).unwrap_or_default();
    let at = |n: usize| lines.get(n.wrapping_sub(1)).copied().map(strip_comment);
    let here = line.and_then(at).unwrap_or("");
    let before = line
        .and_then(|l| (1..l).rev().filter_map(at).find(|l| !l.trim().is_empty()))
        .unwrap_or("");
    if let Some(name) = message.strip_prefix("Variable not found: ") {
        return variable_hint(name.trim(), here);
    }
    if message.starts_with("Function not found: % (") {
        return Some(
            "format with a backtick string: `${name} is running` (Python's '%s is running' % name)"
                .into(),
        );
    }
    if !message.starts_with("syntax error") {
        return None;
    }
    [here, before]
        .iter()
        .find_map(|l| statement_hint(l))
        .or_else(|| expression_hint(here))
}

/// A line without a trailing `// comment`.
fn strip_comment(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

/// Help for a name Rhai does not know: Python's constants, `self`, `pass`, or an
/// assignment without `let`.
fn variable_hint(name: &str, line: &str) -> Option<String> {
    match name {
        "True" | "False" | "None" => Some(format!(
            "Rhai writes true, false and () (for None): write {} here",
            match name {
                "True" => "true",
                "False" => "false",
                _ => "()",
            }
        )),
        "self" => Some("inside a `run` closure the object is `this` (this.name)".into()),
        "pass" => Some("an empty block is just `{}`; there is no `pass`".into()),
        _ => {
            let assigned = line.trim_start().strip_prefix(name).is_some_and(|rest| {
                let rest = rest.trim_start();
                rest.starts_with('=') && !rest.starts_with("==")
            });
            assigned.then(|| format!("declare a variable with `let`: let {}", line.trim()))
        }
    }
}

/// Help for a statement written the Python way.
fn statement_hint(line: &str) -> Option<String> {
    let t = line.trim();
    let first = t.split_whitespace().next().unwrap_or("");
    match first {
        "import" | "from" if !t.contains('"') => Some(
            "there is nothing to import: getpid() and friends are global (Process, socket, \
             sleep, Queue, ...); `import \"file\"` loads a Rhai module"
                .into(),
        ),
        "fn" if t.contains('=') && !t.contains("==") => Some(
            "parameters have no default values in Rhai: take a map of options, or test for ()"
                .into(),
        ),
        "def" => {
            let sig = t
                .strip_prefix("def")
                .unwrap_or("")
                .trim()
                .trim_end_matches(':')
                .trim_end();
            let sig = if sig.is_empty() { "f()" } else { sig };
            Some(format!(
                "functions are written with `fn`: fn {sig} {{ ... }}"
            ))
        }
        "class" => Some(
            "there are no classes: a \"subclass\" of Process is a map with a `run` closure, \
             Process(#{ name: \"x\", run: || { ... } })"
                .into(),
        ),
        "elif" => Some("write `else if cond { ... }`".into()),
        "except" => Some("write `try { ... } catch (e) { ... }`; e.kind names the error".into()),
        "lambda" => Some("a closure is written |x| x + 1".into()),
        _ if t.starts_with('#') && !t.starts_with("#{") => {
            Some("comments start with // in Rhai".into())
        }
        "if" | "while" | "for" | "else" | "try" | "with" | "loop" if t.ends_with(':') => {
            let head = rhai_words(t.trim_end_matches(':').trim_end());
            Some(format!(
                "blocks are written with braces, not a colon: {head} {{ ... }}"
            ))
        }
        _ => None,
    }
}

/// Python's word operators and constants in `text` as Rhai writes them.
fn rhai_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "True" => "true",
            "False" => "false",
            "None" => "()",
            "and" => "&&",
            "or" => "||",
            "not" => "!",
            "elif" => "else if",
            w => w,
        });
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out.replace("! ", "!")
}

/// Help for an expression written the Python way, on the error's own line.
fn expression_hint(line: &str) -> Option<String> {
    if let Some(fixed) = f_string(line) {
        return Some(format!("interpolation uses backtick strings: {fixed}"));
    }
    if let Some(fixed) = keyword_call(line) {
        return Some(format!("keyword arguments are written as a map: {fixed}"));
    }
    let words: Vec<&str> = line
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    if words.iter().any(|w| matches!(*w, "and" | "or" | "not")) {
        return Some("Rhai writes && || and ! for and, or and not".into());
    }
    let before_eq = line.split('=').next().unwrap_or("");
    if line.contains('=') && before_eq.contains(',') && !before_eq.contains('(') {
        return Some(
            "there is no tuple unpacking: keep the value whole (let r = f();) and take its \
             parts (r[0], r.field); server.accept() returns the connection, whose address is \
             conn.peer_addr"
                .into(),
        );
    }
    None
}

/// `f"hello {name}"` → `` `hello ${name}` ``.
fn f_string(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    let start = (0..bytes.len()).find(|&i| {
        matches!(bytes[i], b'f' | b'F')
            && matches!(bytes.get(i + 1), Some(b'"' | b'\''))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
    })?;
    let quote = bytes[start + 1] as char;
    let body_start = start + 2;
    let body_len = line[body_start..].find(quote)?;
    let body = &line[body_start..body_start + body_len];
    let mut out = String::from("`");
    for c in body.chars() {
        match c {
            '{' => out.push_str("${"),
            '`' => out.push_str("\\`"),
            _ => out.push(c),
        }
    }
    out.push('`');
    Some(out)
}

/// `Process(target=task, args=[1])` → `Process(#{ target: task, args: [1] })`.
fn keyword_call(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    // A `name=` inside parentheses that is not `==`, `<=`, `>=`, `!=`, `=>`.
    let eq = (1..bytes.len()).find(|&i| {
        bytes[i] == b'='
            && (bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b' ')
            && !matches!(bytes.get(i + 1), Some(b'=' | b'>'))
            && !matches!(bytes[i - 1], b'=' | b'<' | b'>' | b'!')
            && line[..i].matches('(').count() > line[..i].matches(')').count()
    })?;
    // The call that holds it: the innermost unclosed `(` before the `=`.
    let mut depth = 0i32;
    let open = (0..eq).rev().find(|&i| {
        match bytes[i] {
            b')' | b']' | b'}' => depth += 1,
            b'(' | b'[' | b'{' if depth > 0 => depth -= 1,
            b'(' => return true,
            _ => {}
        }
        false
    })?;
    let name_start = line[..open]
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    let name = &line[name_start..open];
    let mut depth = 0i32;
    let close = (open + 1..bytes.len()).find(|&i| {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' if depth == 0 => return true,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        false
    })?;
    let mut args: Vec<&str> = Vec::new();
    let mut depth = 0i32;
    let mut from = open + 1;
    for i in open + 1..close {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                args.push(line[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    args.push(line[from..close].trim());
    let mut positional: Vec<String> = Vec::new();
    let mut keywords: Vec<String> = Vec::new();
    for arg in args.iter().filter(|a| !a.is_empty()) {
        match arg.split_once('=') {
            Some((k, v))
                if !k.trim().is_empty()
                    && k.trim().chars().all(|c| c.is_alphanumeric() || c == '_')
                    && !v.starts_with('=') =>
            {
                keywords.push(format!("{}: {}", k.trim(), python_value(v.trim())));
            }
            _ => positional.push(python_value(arg)),
        }
    }
    if keywords.is_empty() {
        return None;
    }
    // Process's positional arguments are its target and args, which the map also takes.
    if name == "Process" {
        for (key, value) in ["target", "args"].iter().zip(positional.drain(..)) {
            keywords.insert(0, format!("{key}: {value}"));
        }
    }
    positional.push(format!("#{{ {} }}", keywords.join(", ")));
    Some(format!("{name}({})", positional.join(", ")))
}

/// A Python literal as Rhai writes it: tuples become arrays, `{}` dicts maps, and
/// single-quoted strings double-quoted ones (`'x'` is a character in Rhai).
fn python_value(value: &str) -> String {
    let v = value.trim();
    let v = if v.contains('\'') && !v.contains('"') {
        v.replace('\'', "\"")
    } else {
        v.to_string()
    };
    if v.starts_with('(') && v.ends_with(')') && v.contains(',') {
        let inner = v[1..v.len() - 1].trim().trim_end_matches(',').trim();
        return format!("[{inner}]");
    }
    if v.starts_with('{') && v.ends_with('}') {
        return format!("#{v}");
    }
    match v.as_str() {
        "True" => "true".into(),
        "False" => "false".into(),
        "None" => "()".into(),
        _ => v,
    }
}

/// Renders an error raised while running `source` (a script path or `<repl>`).
pub(crate) fn render(err: &EvalAltResult, source: Option<&str>, color: bool) -> String {
    Diagnostic::of(err, source).render(color)
}

/// Renders a located error.
fn render_located(located: &Diagnostic, color: bool) -> String {
    let mut notes = located.calls.clone();
    notes.extend(located.hints.iter().cloned());
    let mut diagnostic = codespan_reporting::diagnostic::Diagnostic::error()
        .with_message(excerpt::cap_message(&located.message))
        .with_notes(notes);
    let name = located.source.clone().unwrap_or_else(|| "<script>".into());
    let text = located.source.as_deref().and_then(source_text);
    let mut buffer = if color {
        termcolor::Buffer::ansi()
    } else {
        termcolor::Buffer::no_color()
    };
    let column = located.position.position().unwrap_or(1);
    let excerpt = match (&text, located.position.line()) {
        (Some(text), Some(line)) => match line_map::original(&name, line, column) {
            Some((line, column)) => excerpt::Excerpt::around(&name, text, line, column)
                .map(|(file, span)| (file, span, Vec::new()))
                .ok_or(None),
            None => excerpt::Excerpt::locate(&name, text, line, column),
        },
        _ => Err(None),
    };
    match excerpt {
        Ok((file, span, notes)) => {
            diagnostic = diagnostic
                .with_labels(vec![Label::primary((), span)])
                .with_notes(notes);
            let _ = term::emit(&mut buffer, &term::Config::default(), &file, &diagnostic);
        }
        Err(note) => {
            if let Some(note) = note {
                diagnostic = diagnostic.with_notes(vec![note]);
            } else if !located.position.is_none() {
                diagnostic = diagnostic
                    .with_notes(vec![format!("at {}", at(Some(&name), located.position))]);
            }
            let file = SimpleFile::new(name, "");
            let _ = term::emit(&mut buffer, &term::Config::default(), &file, &diagnostic);
        }
    }
    String::from_utf8_lossy(buffer.as_slice())
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_habits_get_one_line_of_help() {
        let hint = |message: &str, text: &str, line: usize| {
            python_hint(message, Some(text), Some(line)).unwrap_or_default()
        };
        assert_eq!(
            hint(
                "syntax error: Expecting ','",
                "let p = Process(target=task, args=[1]);",
                1
            ),
            "keyword arguments are written as a map: Process(#{ target: task, args: [1] })"
        );
        assert_eq!(
            hint(
                "syntax error: x",
                "p1 = Process(target=piao, args=('alex',), name='xxxxxxxx')",
                1
            ),
            "keyword arguments are written as a map: \
             Process(#{ target: piao, args: [\"alex\"], name: \"xxxxxxxx\" })"
        );
        assert_eq!(
            hint(
                "syntax error: x",
                "let p = Process(task, kwargs={\"name\": 1});",
                1
            ),
            "keyword arguments are written as a map: \
             Process(#{ target: task, kwargs: #{\"name\": 1} })"
        );
        assert!(hint("syntax error: x", "import os\nprint(os.getpid())", 2)
            .contains("getpid() and friends are global"));
        assert_eq!(
            hint("syntax error: x", "def task(name):\n    print(name)", 1),
            "functions are written with `fn`: fn task(name) { ... }"
        );
        assert!(hint("Variable not found: True", "let x = True;", 1).contains("true"));
        assert!(hint("Variable not found: None", "let x = None;", 1).contains("()"));
        assert_eq!(
            hint("syntax error: x", "print(f\"{name} is running\")", 1),
            "interpolation uses backtick strings: `${name} is running`"
        );
        assert!(hint("syntax error: x", "if x == 1:", 1).contains("if x == 1 { ... }"));
        assert!(hint("syntax error: x", "while not done and True:", 1)
            .ends_with("while !done && true { ... }"));
        assert!(hint("syntax error: x", "let ok = a and b;", 1).contains("&&"));
        assert_eq!(
            python_hint("syntax error: x", Some("let x = (1 + ;"), Some(1)),
            None
        );
        assert_eq!(
            python_hint("Variable not found: y", Some("print(y)"), Some(1)),
            None
        );
        assert_eq!(
            python_hint("syntax error", Some("if a == b && c <= d {"), Some(1)),
            None
        );
    }

    #[test]
    fn renders_file_line_column_source_and_caret() {
        register_source("t.rhai", "let a = 1;\nlet b = nope;\n");
        let located = Diagnostic {
            message: "Variable not found: nope".into(),
            source: Some("t.rhai".into()),
            position: Position::new(2, 9),
            calls: vec![],
            hints: vec![],
        };
        let text = render_located(&located, false);
        assert!(text.contains("error: Variable not found: nope"), "{text}");
        assert!(text.contains("t.rhai:2:9"), "{text}");
        assert!(text.contains("let b = nope;"), "{text}");
        assert!(text.contains("^"), "{text}");
    }
}
