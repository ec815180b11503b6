//! `input()` at a terminal: the line is edited as Python's readline-backed `input()` edits
//! it (arrows, Home/End, Backspace, history within the run), with rustyline.
//!
//! Only when both standard input and standard output are terminals: a pipe or a file keeps
//! `input()`'s plain byte-by-byte reading, so nothing is read ahead of what a script asked
//! for. Children read no terminal (their standard input is `/dev/null`).

use rhai::Dynamic;

use crate::error::Error;
#[cfg(feature = "cli")]
use crate::error::ErrorKind;

/// Whether `input()` edits lines here: standard input and output are both terminals (and
/// the line editor is built in).
pub(crate) fn interactive() -> bool {
    #[cfg(feature = "cli")]
    {
        use std::io::IsTerminal;
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
    }
    #[cfg(not(feature = "cli"))]
    false
}

#[cfg(feature = "cli")]
thread_local! {
    /// The editor and the pid it belongs to: its history lives as long as the run, and a
    /// forked child never uses its parent's.
    static EDITOR: std::cell::RefCell<Option<(i32, rustyline::DefaultEditor)>> =
        const { std::cell::RefCell::new(None) };
}

/// Shows `prompt` and reads one edited line: the text, `()` at Ctrl-D (end of input), or a
/// catchable `KeyboardInterrupt` at Ctrl-C, which also reaches the children as SIGINT, as
/// the terminal's own Ctrl-C would (the editor holds the terminal in raw mode meanwhile).
#[cfg(feature = "cli")]
pub(crate) fn input(prompt: &str) -> Result<Dynamic, Error> {
    use rustyline::error::ReadlineError;
    let me = crate::process::my_pid().as_raw();
    EDITOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(pid, _)| *pid != me) {
            let config = rustyline::Config::builder()
                .auto_add_history(false)
                .max_history_size(1000)
                .map_err(|e| Error::new(ErrorKind::OSError, e.to_string()))?
                .build();
            let editor = rustyline::DefaultEditor::with_config(config).map_err(|e| {
                Error::new(
                    ErrorKind::OSError,
                    format!("cannot edit lines on this terminal: {e}"),
                )
            })?;
            *slot = Some((me, editor));
        }
        let Some((_, editor)) = slot.as_mut() else {
            return Ok(Dynamic::UNIT);
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                Ok(line.into())
            }
            Err(ReadlineError::Eof) => Ok(Dynamic::UNIT),
            Err(ReadlineError::Interrupted) => {
                crate::process::signal_children(nix::sys::signal::Signal::SIGINT);
                Err(Error::new(
                    ErrorKind::KeyboardInterrupt,
                    "Ctrl-C at the input() prompt",
                ))
            }
            Err(e) => Err(Error::new(
                ErrorKind::OSError,
                format!("reading a line from the terminal: {e}"),
            )),
        }
    })
}

/// Without the line editor, `input()` never edits lines.
#[cfg(not(feature = "cli"))]
pub(crate) fn input(_prompt: &str) -> Result<Dynamic, Error> {
    Ok(Dynamic::UNIT)
}
