//! `--progress`: a bar on stderr counting this process's children, finished out of started.
//!
//! Drawn with indicatif, which stays silent when stderr is not a terminal. Only the process
//! that turned it on draws it; forked children drop their copy without drawing.

use std::cell::RefCell;

use indicatif::{ProgressBar, ProgressStyle};

thread_local! {
    static BAR: RefCell<Option<(ProgressBar, i32)>> = const { RefCell::new(None) };
}

/// A bar of `len` steps in procscript's one style: a spinner, `what` and the counts, the
/// bar, then `more` (the elapsed time, an estimate).
pub(crate) fn bar(len: u64, what: &str, more: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {what} [{{bar:30}}] {more}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Shows the children bar from now on, in this process.
pub(crate) fn enable() {
    let bar = bar(0, "children {pos}/{len} finished", "{elapsed_precise}");
    BAR.with(|b| *b.borrow_mut() = Some((bar, nix::unistd::getpid().as_raw())));
}

/// The bar, if this process drew it (a forked child's inherited copy is not its own).
fn own_bar() -> Option<ProgressBar> {
    BAR.with(|b| {
        let b = b.borrow();
        let (bar, owner) = b.as_ref()?;
        (*owner == nix::unistd::getpid().as_raw()).then(|| bar.clone())
    })
}

fn with_bar(f: impl FnOnce(&ProgressBar)) {
    if let Some(bar) = own_bar() {
        f(&bar);
    }
}

/// A child was started.
pub(crate) fn started() {
    with_bar(|bar| bar.inc_length(1));
}

/// A child was seen to end.
pub(crate) fn finished() {
    with_bar(|bar| bar.inc(1));
}

/// Clears the bar (at the end of the run).
pub(crate) fn finish() {
    with_bar(ProgressBar::finish_and_clear);
}

/// Forgets the parent's bar in a new child, without drawing or freeing it.
pub(crate) fn forget_in_child() {
    BAR.with(|b| {
        if let Some(bar) = b.borrow_mut().take() {
            std::mem::forget(bar);
        }
    });
}

/// Runs `write` with the bar cleared away, then redraws it, so printed lines do not tangle
/// with it on the terminal.
pub(crate) fn around<R>(write: impl FnOnce() -> R) -> R {
    match own_bar() {
        Some(bar) if !bar.is_hidden() => bar.suspend(write),
        _ => write(),
    }
}
