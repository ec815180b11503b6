//! Script errors as people read them: the message, then `file:line:col`, the source line and
//! a caret under the spot, then the chain of calls that led there (innermost first).
//!
//! Rendering is codespan-reporting's; this module only finds the spot in Rhai's nested
//! errors and keeps the source text of every compiled script so a child process, which
//! fails far from where its code was read, can still show the line.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};
use rhai::{EvalAltResult, Position};

use crate::error::Error;

thread_local! {
    static SOURCES: RefCell<HashMap<String, Rc<str>>> = RefCell::new(HashMap::new());
}

/// Remembers the text of a script under the name its errors will carry.
pub fn register_source(name: &str, text: &str) {
    SOURCES.with(|s| s.borrow_mut().insert(name.to_string(), Rc::from(text)));
}

fn source_text(name: &str) -> Option<Rc<str>> {
    SOURCES.with(|s| s.borrow().get(name).cloned())
}

/// Where an error happened, and the calls that led there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The message without its position.
    pub message: String,
    /// The script it happened in, when known.
    pub source: Option<String>,
    /// The spot (1-based line and column), when known.
    pub position: Position,
    /// Calls that led there, innermost first: `in call to `f` at file:line:col`.
    pub calls: Vec<String>,
}

/// The one-line message of an error, without position: procscript's own errors as
/// `Kind: message`, Rhai's in its words.
pub fn message(err: &EvalAltResult) -> String {
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
        if let Some((line, col)) = crate::line_map::original(file, line, col) {
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
pub fn locate(err: &EvalAltResult, source: Option<&str>) -> Located {
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
    if matches!(err, EvalAltResult::ErrorDataRace(..)) {
        calls.push(
            "hint: a closure read a variable that a method call was holding, typically the \
             variable with its own process handle during `p.start()`; in the child use \
             `current_process()`, or call `start(p)` instead of `p.start()`"
                .into(),
        );
    }
    Located {
        message: message(err),
        source,
        position: err.position(),
        calls,
    }
}

/// Renders an error raised while running `source` (a script path or `<repl>`).
pub fn render(err: &EvalAltResult, source: Option<&str>, color: bool) -> String {
    render_located(&locate(err, source), color)
}

/// Renders an already located error.
pub fn render_located(located: &Located, color: bool) -> String {
    let mut diagnostic = Diagnostic::error()
        .with_message(crate::excerpt::cap_message(&located.message))
        .with_notes(located.calls.clone());
    let name = located.source.clone().unwrap_or_else(|| "<script>".into());
    let text = located.source.as_deref().and_then(source_text);
    let mut buffer = if color {
        termcolor::Buffer::ansi()
    } else {
        termcolor::Buffer::no_color()
    };
    let column = located.position.position().unwrap_or(1);
    let excerpt = match (&text, located.position.line()) {
        (Some(text), Some(line)) => match crate::line_map::original(&name, line, column) {
            Some((line, column)) => crate::excerpt::Excerpt::around(&name, text, line, column)
                .map(|(file, span)| (file, span, Vec::new()))
                .ok_or(None),
            None => crate::excerpt::Excerpt::locate(&name, text, line, column),
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
    fn renders_file_line_column_source_and_caret() {
        register_source("t.rhai", "let a = 1;\nlet b = nope;\n");
        let located = Located {
            message: "Variable not found: nope".into(),
            source: Some("t.rhai".into()),
            position: Position::new(2, 9),
            calls: vec![],
        };
        let text = render_located(&located, false);
        assert!(text.contains("error: Variable not found: nope"), "{text}");
        assert!(text.contains("t.rhai:2:9"), "{text}");
        assert!(text.contains("let b = nope;"), "{text}");
        assert!(text.contains("^"), "{text}");
    }
}
