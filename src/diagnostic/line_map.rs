//! Right line numbers for scripts longer than 65,535 lines.
//!
//! Rhai keeps positions in 16-bit counters that stop at 65,535, so an error on line 70,001
//! was reported on line 65,535. A script with more lines than that is compiled from a
//! *packed* copy instead: line breaks between tokens are replaced by spaces until a packed
//! line is about [`PACK_WIDTH`] characters long, so the copy has far fewer lines, and a
//! [`LineMap`] takes every position in the copy back to the original line and column.
//!
//! The copy is made with Rhai's own tokenizer, so only the space between tokens changes
//! (line comments there are dropped with it; doc comments are kept, with their line
//! break). It is then checked: tokenizing it must give exactly the tokens of the original,
//! or the original is compiled as it is (with positions past 65,535 reported as such).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rhai::{InputStream, Position, Token, TokenizeState, TokenizerControlBlock};

/// Rhai's largest line or column number.
const RHAI_MAX: usize = u16::MAX as usize;

/// Packed lines are cut after about this many characters (well below Rhai's 65,535, so
/// columns never stop counting either).
pub(crate) const PACK_WIDTH: usize = 4000;

/// Where each stretch of a packed line came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineMap {
    /// Per packed line (index 0 is line 1): (packed column, original line, original column)
    /// at the start of each token, by packed column.
    lines: Vec<Vec<(usize, usize, usize)>>,
}

impl LineMap {
    /// The original 1-based line and column of a packed position.
    pub(crate) fn original(&self, line: usize, column: usize) -> Option<(usize, usize)> {
        let segments = self.lines.get(line.checked_sub(1)?)?;
        let index = segments.partition_point(|&(col, ..)| col <= column.max(1));
        let &(col, line, start) = segments.get(index.checked_sub(1)?)?;
        Some((line, start + column.max(1) - col))
    }
}

thread_local! {
    static MAPS: RefCell<HashMap<String, Rc<LineMap>>> = RefCell::new(HashMap::new());
}

/// Remembers the map of the script known as `name` (replacing or removing an earlier one).
pub(crate) fn register(name: &str, map: Option<LineMap>) {
    MAPS.with(|m| match map {
        Some(map) => {
            m.borrow_mut().insert(name.to_string(), Rc::new(map));
        }
        None => {
            m.borrow_mut().remove(name);
        }
    });
}

/// The original line and column of a position Rhai reported in script `name`, when the
/// script was packed; `None` when it was not (its positions are then exact, up to 65,535).
pub(crate) fn original(name: &str, line: usize, column: usize) -> Option<(usize, usize)> {
    let map = MAPS.with(|m| m.borrow().get(name).cloned())?;
    map.original(line, column)
}

/// Whether `source` has more lines than Rhai can number.
pub(crate) fn too_long(source: &str) -> bool {
    source
        .bytes()
        .filter(|&b| b == b'\n')
        .nth(RHAI_MAX - 1)
        .is_some()
}

/// A character stream over a string that knows its byte offset, for Rhai's tokenizer.
struct Stream<'a> {
    text: &'a str,
    offset: usize,
    pushed: Vec<char>,
}

impl InputStream for Stream<'_> {
    fn unget(&mut self, ch: char) {
        self.offset -= ch.len_utf8();
        self.pushed.push(ch);
    }

    fn get_next(&mut self) -> Option<char> {
        let ch = match self.pushed.pop() {
            Some(ch) => ch,
            None => self.text[self.offset..].chars().next()?,
        };
        self.offset += ch.len_utf8();
        Some(ch)
    }

    fn peek_next(&mut self) -> Option<char> {
        match self.pushed.last() {
            Some(&ch) => Some(ch),
            None => self.text[self.offset..].chars().next(),
        }
    }
}

/// One token: what it is, its byte range, and where Rhai's counters put it (1-based line,
/// counted from the start of the text, and column).
struct Lexed {
    token: Token,
    range: std::ops::Range<usize>,
    line: usize,
    column: usize,
}

/// Whether `text` starts with a doc comment, which Rhai keeps as a token (its own test).
fn is_doc_comment(text: &str) -> bool {
    (text.starts_with("///") && !text.starts_with("////"))
        || (text.starts_with("/**") && !text.starts_with("/***"))
}

/// Skips whitespace and comments other than doc comments (which are tokens), as Rhai's
/// tokenizer would, moving `line`/`column` as Rhai's counters would move. `None` for a
/// block comment that never ends.
fn skip_space(stream: &mut Stream, line: &mut usize, column: &mut usize) -> Option<()> {
    loop {
        let rest = &stream.text[stream.offset..];
        if !stream.pushed.is_empty() {
            return Some(());
        }
        if let Some(ch) = rest.chars().next().filter(|c| c.is_whitespace()) {
            stream.offset += ch.len_utf8();
            if ch == '\n' {
                (*line, *column) = (*line + 1, 0);
            } else {
                *column += 1;
            }
        } else if rest.starts_with("//") && !is_doc_comment(rest) {
            // To the end of the line, the line break included.
            let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
            stream.offset += end;
            if rest[..end].ends_with('\n') {
                (*line, *column) = (*line + 1, 0);
            } else {
                *column += rest[..end].chars().count();
            }
        } else if rest.starts_with("/*") && !is_doc_comment(rest) {
            let mut level = 0usize;
            let mut chars = rest.char_indices().peekable();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                match (ch, chars.peek().map(|&(_, c)| c)) {
                    ('/', Some('*')) => {
                        chars.next();
                        level += 1;
                        *column += 2;
                    }
                    ('*', Some('/')) => {
                        chars.next();
                        level -= 1;
                        *column += 2;
                    }
                    ('\n', _) => (*line, *column) = (*line + 1, 0),
                    _ => *column += 1,
                }
                if level == 0 {
                    end = Some(i + 2);
                    break;
                }
            }
            stream.offset += end?;
        } else {
            return Some(());
        }
    }
}

/// Tokenizes `text` as the parser would (string interpolation included), up to the end or
/// to a lexical error (whose byte offset comes second); `None` for a position past Rhai's
/// counters.
fn tokens(text: &str) -> Option<(Vec<Lexed>, Option<usize>)> {
    let control = Rc::new(RefCell::new(TokenizerControlBlock::new()));
    let mut state = TokenizeState {
        max_string_len: None,
        next_token_cannot_be_unary: false,
        tokenizer_control: control.clone(),
        comment_level: 0,
        include_comments: false,
        is_within_text_terminated_by: None,
        last_token: None,
    };
    let mut stream = Stream {
        text,
        offset: 0,
        pushed: Vec::new(),
    };
    // Rhai's counters restart at line 1 before each token, with the lines before it in
    // `base`, so that they never reach their end.
    let mut pos = Position::new(1, 0);
    let mut base = 0;
    // Brace depths at which interpolations `${ ... }` were opened.
    let (mut depth, mut interpolations) = (0usize, Vec::new());
    let mut out = Vec::new();
    loop {
        if control.borrow().is_within_text {
            control.borrow_mut().is_within_text = false;
            state.is_within_text_terminated_by = Some("`".into());
        }
        let (mut line, mut column) = (pos.line()?, pos.position().unwrap_or(0));
        if state.is_within_text_terminated_by.is_none() && state.comment_level == 0 {
            skip_space(&mut stream, &mut line, &mut column)?;
        }
        if column >= RHAI_MAX {
            return None;
        }
        base += line - 1;
        pos = Position::new(1, column as u16);
        let start = stream.offset;
        let (token, at) = rhai::get_next_token(&mut stream, &mut state, &mut pos);
        // An empty stretch of text in an interpolated string has no position: use where it
        // began (no error can point at it).
        let (line, column) = match at.line() {
            Some(line) => (line, at.position().unwrap_or(1)),
            None => (1, column + 1),
        };
        if column >= RHAI_MAX || line >= RHAI_MAX {
            return None;
        }
        match &token {
            Token::EOF => return Some((out, None)),
            Token::LexError(_) => return Some((out, Some(start))),
            Token::InterpolatedString(_) => interpolations.push(depth),
            Token::LeftBrace | Token::MapStart => depth += 1,
            Token::RightBrace => {
                depth = depth.saturating_sub(1);
                if interpolations.last() == Some(&depth) {
                    interpolations.pop();
                    // The parser switches back to the string's text here.
                    control.borrow_mut().is_within_text = true;
                }
            }
            _ => {}
        }
        out.push(Lexed {
            token,
            range: start..stream.offset,
            line: base + line,
            column,
        });
    }
}

/// Packs `source` (see the module docs); `None` when it cannot be done safely.
pub(crate) fn pack(source: &str) -> Option<(String, LineMap)> {
    let (lexed, lex_error) = tokens(source)?;
    // The packed copy: tokens as they are, and between two of them nothing if there was
    // nothing, else one space, or a line break once a packed line is long enough.
    let mut packed = String::with_capacity(source.len());
    let mut width = 0;
    let mut previous_end = 0;
    for token in &lexed {
        if token.range.start < previous_end {
            return None;
        }
        if token.range.start > previous_end {
            if width >= PACK_WIDTH {
                packed.push('\n');
                width = 0;
            } else {
                packed.push(' ');
                width += 1;
            }
        }
        let text = source.get(token.range.clone())?;
        packed.push_str(text);
        width = match text.rfind('\n') {
            Some(i) => text[i + 1..].chars().count(),
            None => width + text.chars().count(),
        };
        previous_end = token.range.end;
    }
    packed.push('\n');
    // A lexical error ends the tokens: the rest follows as it is, on lines of its own, so
    // that Rhai reports the error in it.
    let rest_line = packed.matches('\n').count() + 1;
    if let Some(at) = lex_error {
        packed.push_str(source.get(at..)?);
    }
    // The copy must hold exactly the original's tokens.
    let (check, check_error) = tokens(&packed)?;
    if check.len() != lexed.len()
        || check_error.is_some() != lex_error.is_some()
        || check.iter().zip(&lexed).any(|(a, b)| a.token != b.token)
    {
        return None;
    }
    let lines = packed.matches('\n').count() + 1;
    if lines >= RHAI_MAX {
        return None;
    }
    // Where each token really is in the original (Rhai's own counters go wrong in a raw
    // string that spans lines, so they are counted here from the text).
    let mut map = LineMap {
        lines: vec![Vec::new(); lines],
    };
    let mut cursor = (1usize, 1usize, 0usize); // line, column, byte offset
    for (original, copy) in lexed.iter().zip(&check) {
        for ch in source.get(cursor.2..original.range.start)?.chars() {
            cursor = if ch == '\n' {
                (cursor.0 + 1, 1, cursor.2 + 1)
            } else {
                (cursor.0, cursor.1 + 1, cursor.2 + ch.len_utf8())
            };
        }
        map.lines
            .get_mut(copy.line - 1)?
            .push((copy.column, cursor.0, cursor.1));
    }
    if let Some(at) = lex_error {
        let before = source.get(..at)?;
        let first = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        map.lines.get_mut(rest_line - 1)?.push((1, first, column));
        for (k, line) in map.lines.iter_mut().enumerate().skip(rest_line) {
            line.push((1, first + k + 1 - rest_line, 1));
        }
    }
    Some((packed, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_tokens_and_maps_positions_back() {
        let source = "let a = 1;\n// a comment\nlet s = `x ${a + {1}} y\nz`;\n/// doc\nfn f() { #{k: 2} }\nlet t = \"é\";\n";
        let (packed, map) = pack(source).unwrap();
        assert!(packed.lines().count() < source.lines().count(), "{packed}");
        // `fn` starts line 6 of the original.
        let fn_at = packed.find("fn f").unwrap();
        let line = packed[..fn_at].matches('\n').count() + 1;
        let column = packed[..fn_at].rsplit('\n').next().unwrap().chars().count() + 1;
        assert_eq!(map.original(line, column), Some((6, 1)));
        // `"é"` on line 7, column 9.
        let t_at = packed.find('"').unwrap();
        let line = packed[..t_at].matches('\n').count() + 1;
        let column = packed[..t_at].rsplit('\n').next().unwrap().chars().count() + 1;
        assert_eq!(map.original(line, column), Some((7, 9)));
    }

    #[test]
    fn strings_comments_and_interpolations_survive_packing() {
        let source = concat!(
            "let a = \"line one\\\n   continued\";\n",
            "let r = #\"raw \"quoted\"\n still raw\"#;\n",
            "/* outer /* inner */\n still comment */ let c = '\\n';\n",
            "let t = `a ${ `b ${ #{x: [1, {2}]}.x[1] } c` }\n d \\${not} e`;\n",
            "let u = `${a}${r}`; // trailing\n",
            "print(t + u + c);\n",
        );
        let (packed, _) = pack(source).expect("packs");
        let engine = rhai::Engine::new();
        let run = |text: &str| {
            engine
                .eval::<String>(&format!("{text}\nt + u + c + a + r"))
                .unwrap()
        };
        assert_eq!(run(&packed), run(source));
        assert!(packed.lines().count() < source.lines().count(), "{packed}");
    }

    #[test]
    fn a_lexical_error_keeps_its_place() {
        let source = "let x = 1;\n".repeat(70_000) + "let s = \"open\nlet y = 2;\n";
        let (packed, map) = pack(&source).unwrap();
        let at = packed.find('"').unwrap();
        let line = packed[..at].matches('\n').count() + 1;
        let column = packed[..at].rsplit('\n').next().unwrap().chars().count() + 1;
        assert_eq!(map.original(line, column), Some((70_001, 9)));
        assert_eq!(map.original(line + 1, 5), Some((70_002, 5)));
    }

    #[test]
    fn a_long_script_packs_into_few_lines() {
        let source = "let x = 1;\n".repeat(70_000) + "let y = nope;\n";
        assert!(too_long(&source));
        let (packed, map) = pack(&source).unwrap();
        assert!(packed.lines().count() < 1000, "{}", packed.lines().count());
        let at = packed.find("nope").unwrap();
        let line = packed[..at].matches('\n').count() + 1;
        let column = packed[..at].rsplit('\n').next().unwrap().chars().count() + 1;
        assert_eq!(map.original(line, column), Some((70_001, 9)));
    }
}
