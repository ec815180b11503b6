//! procscript runs process-orchestration scripts written in [Rhai](https://rhai.rs), with
//! native primitives built on real `fork()`: processes, sockets, pipes, queues, locks and
//! shared values, pools, managers and external programs, with Python's `multiprocessing`
//! names. This page is all a host needs; `docs/embedding.md` has the details.
//!
//! # Run a script file as the `procscript` binary does
//!
//! ```no_run
//! let mut runtime = procscript::Runtime::builder()
//!     .handle_signals(true) // Ctrl-C ends the script and its children
//!     .max_procs(100)       // `--max-procs 100`
//!     .build();
//! let code = match runtime.run_file("scripts/join.rhai".as_ref(), &[]) {
//!     Ok(code) => code, // `exit(n)`, or 0
//!     Err(error) => {
//!         eprintln!("{error}"); // file:line:col, the source line, a caret
//!         error.exit_code()
//!     }
//! };
//! std::process::exit(code);
//! ```
//!
//! [`Runtime::run_file`] ends daemon children and waits for the others before it returns.
//! [`Builder`] sets what the binary's flags set; [`ScriptError`] carries a [`Diagnostic`]
//! (message, file, line, column, calls, hints) for the host to show as it likes.
//!
//! # Evaluate script text
//!
//! ```
//! let runtime = procscript::Runtime::new();
//! let ast = runtime.compile_source("example.rhai", "let p = spawn exit(3); p.join()").unwrap();
//! let code: i64 = runtime.engine().eval_ast(&ast).unwrap();
//! assert_eq!(code, 3);
//! procscript::finish(); // end daemons, wait for the other children
//! ```
//!
//! When a host evaluates scripts itself, it calls [`finish`] afterwards: the one cleanup call.
//!
//! # Or bring your own engine
//!
//! [`ProcscriptPackage`] gives a plain [`rhai::Engine`] every procscript name and the `spawn`
//! and `with` syntax; the parts ([`ProcessPackage`], [`IpcPackage`], ...) can be taken alone.
//! procscript re-exports the `rhai` it is built with as [`procscript::rhai`](rhai), so a host
//! needs no `rhai` dependency of its own. Natives fail with [`Error`]s, which scripts catch
//! as maps `#{ kind, message, errno }` ([`ErrorKind`] names Python's exceptions); a handle on
//! a process a script made reads as a [`Process`].
//!
//! # Fork safety: what a host must ensure
//!
//! procscript forks the calling process. A host must call into scripts that start processes
//! only while it is **single-threaded**: a child of a threaded process can deadlock on a
//! lock (the allocator's, stdout's) that another thread held at the fork. procscript checks
//! this (`/proc/self/task`) and fails the `start` with a `ProcessError` instead of forking.
//! Further, procscript installs a SIGCHLD handler (it reaps only the children it started)
//! and children end with `_exit`, so a host's `atexit` handlers and destructors never run in
//! them.

#![cfg(unix)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]
#![deny(unsafe_code)]

mod builtins;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
mod command;
mod convert;
mod diagnostic;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod ipc;
mod manager;
mod net;
mod output;
mod package;
mod pool;
mod process;
mod progress;
mod readline;
#[cfg(feature = "cli")]
mod reference;
#[cfg(feature = "cli")]
mod repl;
mod runtime;
#[allow(unsafe_code)] // signal handlers and dispositions
mod signal;
#[allow(unsafe_code)] // shared mappings, futexes, robust lists, the two sleeps, raw descriptors
mod sys;
mod trace;

pub use rhai;

pub use builtins::BuiltinsPackage;
pub use command::CommandPackage;
pub use diagnostic::Diagnostic;
pub use error::{Error, ErrorKind};
pub use ipc::IpcPackage;
pub use manager::ManagerPackage;
pub use net::package::NetPackage;
pub use package::ProcscriptPackage;
pub use pool::package::PoolPackage;
pub use process::package::ProcessPackage;
pub use process::Process;
pub use runtime::{finish, Builder, Runtime, ScriptError};

/// docs/embedding.md's Rust examples, compiled (and run, unless marked `no_run`) as
/// doctests, so that the page cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
struct EmbeddingDoc;
