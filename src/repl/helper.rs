//! Line-editing help for the REPL: completion of function, method and variable names,
//! highlighting of keywords and strings, and hints from history.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

/// Rhai's keywords, plus procscript's two pieces of syntax.
const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "switch", "while", "loop", "do", "until", "for", "in",
    "break", "continue", "return", "throw", "try", "catch", "import", "export", "as", "private",
    "true", "false", "this", "global", "spawn", "with",
];

const KEYWORD_STYLE: &str = "\x1b[1;34m";
const STRING_STYLE: &str = "\x1b[32m";
const HINT_STYLE: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The REPL's rustyline helper.
pub struct ReplHelper {
    functions: Vec<String>,
    /// Variable names in the session's scope, refreshed after each input.
    pub variables: Rc<RefCell<Vec<String>>>,
    hinter: HistoryHinter,
    color: bool,
}

impl ReplHelper {
    pub fn new(functions: Vec<String>, color: bool) -> Self {
        let mut functions = functions;
        functions.sort();
        functions.dedup();
        Self {
            functions,
            variables: Rc::default(),
            hinter: HistoryHinter::new(),
            color,
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !is_word_char(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let prefix = &before[start..];
        let after_dot = before[..start].ends_with('.');
        let mut candidates: Vec<String> = Vec::new();
        let mut add = |name: &str| {
            if name.starts_with(prefix) && !candidates.iter().any(|c| c == name) {
                candidates.push(name.to_string());
            }
        };
        if !after_dot {
            self.variables.borrow().iter().for_each(|v| add(v));
            KEYWORDS.iter().for_each(|k| add(k));
        }
        self.functions.iter().for_each(|f| add(f));
        candidates.sort();
        Ok((
            start,
            candidates
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.hinter.hint(line, pos, ctx)
    }
}

/// Colours keywords and string literals; everything else is left as typed.
pub fn highlight_code(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' || c == '`' || c == '\'' {
            let mut end = line.len();
            let mut escaped = false;
            for (j, d) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' {
                    escaped = true;
                } else if d == c {
                    end = j + d.len_utf8();
                    break;
                }
            }
            out.push_str(STRING_STYLE);
            out.push_str(&line[i..end]);
            out.push_str(RESET);
        } else if is_word_char(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !is_word_char(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            let word = &line[i..end];
            if KEYWORDS.contains(&word) {
                out.push_str(KEYWORD_STYLE);
                out.push_str(word);
                out.push_str(RESET);
            } else {
                out.push_str(word);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.color {
            Cow::Owned(highlight_code(line))
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("{HINT_STYLE}{hint}{RESET}"))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_strings_are_coloured_and_text_kept() {
        let line = r#"let s = "a \" b"; fn f() { spawn x }"#;
        let coloured = highlight_code(line);
        let plain = coloured
            .replace(KEYWORD_STYLE, "")
            .replace(STRING_STYLE, "")
            .replace(RESET, "");
        assert_eq!(plain, line);
        assert!(coloured.starts_with(&format!("{KEYWORD_STYLE}let{RESET}")));
        assert!(coloured.contains(&format!("{STRING_STYLE}\"a \\\" b\"{RESET}")));
        assert!(coloured.contains(&format!("{KEYWORD_STYLE}spawn{RESET}")));
    }

    #[test]
    fn unterminated_string_is_coloured_to_the_end() {
        assert_eq!(
            highlight_code("\"abc"),
            format!("{STRING_STYLE}\"abc{RESET}")
        );
    }
}
