//! The source excerpt under a diagnostic: the one line of the error, cut to a window around
//! the spot when it is long, and numbered with its real line and column.
//!
//! codespan-reporting prints whole lines, so a syntax error in a one-line 50 MB script
//! printed 50 MB. An [`Excerpt`] hands it only the window, and reports the real line and
//! column numbers through its own [`Files`] implementation.

use std::ops::Range;

use codespan_reporting::files::{Error, Files};

/// Characters of a long line shown before and after the spot.
const SIDE: usize = 60;

/// Lines up to this many characters are shown whole.
const WHOLE: usize = 2 * SIDE + 40;

/// One source line, or a window of it, as codespan-reporting reads a file.
#[derive(Debug, Clone)]
pub(crate) struct Excerpt {
    name: String,
    /// The text shown: the window, with `…` where it was cut.
    text: String,
    /// The real 1-based line number.
    line: usize,
    /// How many characters of the real line come before the first real character shown.
    skipped: usize,
    /// Whether `text` begins with the `…` marker.
    marked: bool,
}

impl Excerpt {
    /// The excerpt of 1-based `line` of `source` around 1-based character `column`, and the
    /// byte range in it of the character to underline. `None` when the source has no such
    /// line.
    pub(crate) fn around(
        name: &str,
        source: &str,
        line: usize,
        column: usize,
    ) -> Option<(Self, Range<usize>)> {
        let body = source.split('\n').nth(line.checked_sub(1)?)?;
        let body = body.strip_suffix('\r').unwrap_or(body);
        let column = column.max(1);
        let length = body.chars().count();
        let (first, last) = if length <= WHOLE {
            (0, length)
        } else {
            let first = (column - 1)
                .saturating_sub(SIDE)
                .min(length.saturating_sub(2 * SIDE));
            (first, (first + 2 * SIDE).min(length))
        };
        let marked = first > 0;
        let mut text = String::new();
        if marked {
            text.push('…');
        }
        text.extend(body.chars().skip(first).take(last - first));
        if last < length {
            text.push('…');
        }
        // The underlined character, as a byte range of `text`.
        let index = (column - 1).saturating_sub(first) + usize::from(marked);
        let start = text
            .char_indices()
            .nth(index)
            .map_or(text.len(), |(i, _)| i);
        let end = text[start..]
            .chars()
            .next()
            .map_or(start, |c| start + c.len_utf8());
        let excerpt = Self {
            name: name.to_string(),
            text,
            line,
            skipped: first,
            marked,
        };
        Some((excerpt, start..end))
    }
}

/// The largest line or column Rhai can report: its positions are 16-bit and stop there.
pub(crate) const RHAI_MAX: usize = u16::MAX as usize;

impl Excerpt {
    /// The excerpt for a position Rhai reported, with notes when Rhai's 16-bit positions
    /// stopped counting: `Err` with a note when the line cannot be known (`Err(None)` when
    /// the source has no such line).
    #[allow(clippy::type_complexity)]
    pub(crate) fn locate(
        name: &str,
        source: &str,
        line: usize,
        column: usize,
    ) -> Result<(Self, Range<usize>, Vec<String>), Option<String>> {
        if line >= RHAI_MAX && source.split('\n').nth(RHAI_MAX).is_some() {
            return Err(Some(format!(
                "at {name}, line {RHAI_MAX} or later: Rhai numbers lines only up to {RHAI_MAX} \
                 (see docs/robustness.md)"
            )));
        }
        let (excerpt, span) = Self::around(name, source, line, column).ok_or(None)?;
        let mut notes = Vec::new();
        if column >= RHAI_MAX
            && source
                .split('\n')
                .nth(line - 1)
                .is_some_and(|l| l.chars().nth(RHAI_MAX).is_some())
        {
            notes.push(format!(
                "the error is at column {RHAI_MAX} or later of this line: Rhai numbers columns \
                 only up to {RHAI_MAX}"
            ));
        }
        Ok((excerpt, span, notes))
    }
}

/// Longest message shown whole; a longer one (a syntax error quoting a huge token) is cut.
const MESSAGE_MAX: usize = 2000;

/// `message`, cut to 2,000 characters with a note of how much was left out.
pub(crate) fn cap_message(message: &str) -> String {
    match message.char_indices().nth(MESSAGE_MAX) {
        None => message.to_string(),
        Some((cut, _)) => format!(
            "{}… ({} more characters)",
            &message[..cut],
            message[cut..].chars().count()
        ),
    }
}

impl<'a> Files<'a> for Excerpt {
    type FileId = ();
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, (): ()) -> Result<&'a str, Error> {
        Ok(&self.name)
    }

    fn source(&'a self, (): ()) -> Result<&'a str, Error> {
        Ok(&self.text)
    }

    fn line_index(&'a self, (): (), _byte_index: usize) -> Result<usize, Error> {
        Ok(0)
    }

    fn line_number(&'a self, (): (), _line_index: usize) -> Result<usize, Error> {
        Ok(self.line)
    }

    fn column_number(
        &'a self,
        (): (),
        _line_index: usize,
        byte_index: usize,
    ) -> Result<usize, Error> {
        let shown = self.text[..byte_index.min(self.text.len())].chars().count();
        Ok(self.skipped + shown - usize::from(self.marked && shown > 0) + 1)
    }

    fn line_range(&'a self, (): (), line_index: usize) -> Result<Range<usize>, Error> {
        if line_index == 0 {
            Ok(0..self.text.len())
        } else {
            Err(Error::LineTooLarge {
                given: line_index,
                max: 0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_whole_and_columns_count_characters() {
        let (e, span) = Excerpt::around("t", "print('主');\nlet x = y;\n", 2, 9).unwrap();
        assert_eq!(e.text, "let x = y;");
        assert_eq!(&e.text[span.clone()], "y");
        assert_eq!(e.column_number((), 0, span.start).unwrap(), 9);
        assert_eq!(e.line_number((), 0).unwrap(), 2);
        let (e, span) = Excerpt::around("t", "print('主');\n", 1, 8).unwrap();
        assert_eq!(&e.text[span], "主");
    }

    #[test]
    fn a_long_line_is_cut_to_a_window_with_real_columns() {
        let line = format!("{}X{}", "a".repeat(1_000_000), "b".repeat(1_000_000));
        let (e, span) = Excerpt::around("t", &line, 1, 1_000_001).unwrap();
        assert!(e.text.chars().count() <= 2 * SIDE + 2, "{}", e.text.len());
        assert!(e.text.starts_with('…') && e.text.ends_with('…'));
        assert_eq!(&e.text[span.clone()], "X");
        assert_eq!(e.column_number((), 0, span.start).unwrap(), 1_000_001);
    }

    #[test]
    fn no_such_line_is_none() {
        assert!(Excerpt::around("t", "one line", 3, 1).is_none());
    }
}
