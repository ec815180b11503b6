//! Line-editing help for the REPL: completion of the session's own variables and functions,
//! of built-in names, and of what a value has after `value.`; highlighting of keywords and
//! strings; hints from history.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use serde::Deserialize;

/// Rhai's keywords, plus procscript's two pieces of syntax.
const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "switch", "while", "loop", "do", "until", "for", "in",
    "break", "continue", "return", "throw", "try", "catch", "import", "export", "as", "private",
    "true", "false", "this", "global", "spawn", "with",
];

/// The REPL's own commands.
const COMMANDS: &[&str] = &["help", "dir", "ps", "quit"];

const KEYWORD_STYLE: &str = "\x1b[1;34m";
const STRING_STYLE: &str = "\x1b[32m";
const HINT_STYLE: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// A variable of the session, as completion sees it.
#[derive(Debug, Clone, Default)]
pub(super) struct Variable {
    /// Its name.
    pub name: String,
    /// Its type as `type_of` says it (`Process`, `string`, `map`).
    pub type_name: String,
    /// Its fields: a map's keys, an object-style process's fields.
    pub fields: Vec<String>,
}

/// What the session has defined, refreshed after each input.
#[derive(Debug, Default)]
pub(super) struct State {
    variables: Vec<Variable>,
    functions: Vec<String>,
}

impl State {
    /// Replaces what is known with the session's current variables and functions.
    pub(super) fn update(&mut self, variables: Vec<Variable>, functions: Vec<(String, String)>) {
        self.variables = variables;
        self.functions = functions.into_iter().map(|(name, _)| name).collect();
    }
}

/// The REPL's rustyline helper.
pub(super) struct ReplHelper {
    /// Every built-in function name (procscript's and Rhai's).
    builtins: BTreeSet<String>,
    /// Methods and properties by receiver type (`Process` → `join`, `pid`, ...).
    members: BTreeMap<String, BTreeSet<String>>,
    /// The session's variables and functions.
    pub state: Rc<RefCell<State>>,
    hinter: HistoryHinter,
    color: bool,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    functions: Vec<FnMeta>,
}

#[derive(Deserialize)]
struct FnMeta {
    name: String,
    #[serde(default)]
    params: Vec<ParamMeta>,
}

#[derive(Deserialize)]
struct ParamMeta {
    #[serde(default, rename = "type")]
    type_name: Option<String>,
}

/// A parameter type from the engine's metadata as `type_of` names it, `None` for a type
/// completion should not offer methods of (any value, the many integer widths).
fn receiver_type(rust: &str) -> Option<String> {
    let t = rust
        .trim()
        .trim_start_matches("&mut ")
        .trim_start_matches('&');
    let name = match t {
        "Dynamic" | "()" | "i8" | "i16" | "i32" | "i128" | "u8" | "u16" | "u32" | "u64"
        | "u128" | "f32" => return None,
        "Array" => "array",
        "Blob" => "blob",
        "Map" => "map",
        "ImmutableString" | "String" | "str" => "string",
        "INT" | "i64" => "i64",
        "FLOAT" | "f64" => "f64",
        "Instant" => "timestamp",
        "FnPtr" => "Fn",
        other if other.starts_with("std::ops::Range<") && !other.ends_with("<i64>") => return None,
        other => return Some(crate::convert::script_type_name(other)),
    };
    Some(name.to_string())
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

impl ReplHelper {
    /// A helper that knows the engine's functions and, through [`ReplHelper::state`], the
    /// session's own.
    pub(super) fn new(engine: &rhai::Engine, color: bool) -> Self {
        let mut builtins = BTreeSet::new();
        let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let metadata = engine
            .gen_fn_metadata_to_json(true)
            .ok()
            .and_then(|json| serde_json::from_str::<Metadata>(&json).ok());
        for meta in metadata.map(|m| m.functions).unwrap_or_default() {
            let (name, is_property) = match meta.name.strip_prefix("get$") {
                Some(property) => (property.to_string(), true),
                None => (meta.name.clone(), false),
            };
            if !is_identifier(&name) || name.starts_with("anon") {
                continue;
            }
            if !is_property {
                builtins.insert(name.clone());
            }
            let receiver = meta
                .params
                .first()
                .and_then(|p| p.type_name.as_deref())
                .and_then(receiver_type);
            if let Some(receiver) = receiver {
                members.entry(receiver).or_default().insert(name);
            }
        }
        Self {
            builtins,
            members,
            state: Rc::default(),
            hinter: HistoryHinter::new(),
            color,
        }
    }

    /// Candidates for `prefix` after `receiver.`: what the receiver's type has, and its
    /// fields; every method when the receiver's type is unknown.
    fn members_of(&self, receiver: &str) -> BTreeSet<String> {
        let state = self.state.borrow();
        let type_name = if receiver.ends_with(['"', '`']) {
            Some("string".to_string())
        } else {
            state
                .variables
                .iter()
                .find(|v| v.name == receiver)
                .map(|v| v.type_name.clone())
        };
        let mut out = BTreeSet::new();
        match type_name {
            Some(t) => {
                out.extend(self.members.get(&t).into_iter().flatten().cloned());
                if let Some(v) = state.variables.iter().find(|v| v.name == receiver) {
                    out.extend(v.fields.iter().cloned());
                }
            }
            None => {
                out.extend(self.members.values().flatten().cloned());
                out.extend(state.functions.iter().cloned());
            }
        }
        out
    }

    /// Candidates for a name at the start of an expression.
    fn names(&self) -> BTreeSet<String> {
        let state = self.state.borrow();
        let mut out: BTreeSet<String> = state.variables.iter().map(|v| v.name.clone()).collect();
        out.extend(state.functions.iter().cloned());
        out.extend(self.builtins.iter().cloned());
        out.extend(KEYWORDS.iter().map(|k| k.to_string()));
        out.extend(COMMANDS.iter().map(|k| k.to_string()));
        out
    }

    /// The candidates for the word ending at `pos`: where it starts, and the names.
    pub(super) fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !is_word_char(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let prefix = &before[start..];
        let pool = match before[..start].strip_suffix('.') {
            Some(head) => {
                let receiver_start = head
                    .char_indices()
                    .rev()
                    .find(|(_, c)| !is_word_char(*c))
                    .map_or(0, |(i, c)| i + c.len_utf8());
                let receiver = if head.ends_with(['"', '`']) {
                    &head[head.len() - 1..]
                } else {
                    &head[receiver_start..]
                };
                self.members_of(receiver)
            }
            None => self.names(),
        };
        let found = pool
            .into_iter()
            .filter(|name| name.starts_with(prefix))
            .collect();
        (start, found)
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
        let (start, names) = self.candidates(line, pos);
        Ok((
            start,
            names
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
pub(super) fn highlight_code(line: &str) -> String {
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

    fn helper() -> ReplHelper {
        let runtime = crate::runtime::Runtime::new();
        let helper = ReplHelper::new(runtime.engine(), false);
        helper.state.borrow_mut().update(
            vec![
                Variable {
                    name: "worker".into(),
                    type_name: "Process".into(),
                    fields: vec!["count".into()],
                },
                Variable {
                    name: "words".into(),
                    type_name: "string".into(),
                    fields: vec![],
                },
            ],
            vec![("work_hard".into(), "work_hard(x)".into())],
        );
        helper
    }

    #[test]
    fn completes_the_sessions_own_names() {
        let (start, names) = helper().candidates("let x = wor", 11);
        assert_eq!(start, 8);
        for name in ["worker", "words", "work_hard"] {
            assert!(names.iter().any(|n| n == name), "{name}: {names:?}");
        }
    }

    #[test]
    fn completes_members_by_the_receivers_type() {
        let h = helper();
        let (start, names) = h.candidates("worker.j", 8);
        assert_eq!(start, 7);
        assert!(names.contains(&"join".to_string()), "{names:?}");
        let (_, names) = h.candidates("worker.", 7);
        for name in ["start", "pid", "exitcode", "count", "run"] {
            assert!(names.iter().any(|n| n == name), "{name}: {names:?}");
        }
        assert!(!names.iter().any(|n| n == "accept"), "{names:?}");
        let (_, names) = h.candidates("words.st", 8);
        assert!(names.contains(&"strip".to_string()), "{names:?}");
        assert!(!names.contains(&"start".to_string()), "{names:?}");
        let (_, names) = h.candidates("\"a b\".sp", 8);
        assert!(names.contains(&"split".to_string()), "{names:?}");
    }

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
