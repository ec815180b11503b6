//! procscript runs process-orchestration scripts written in [Rhai](https://rhai.rs), with
//! native primitives built on real `fork()`: start a process that runs a script function,
//! join it, read pids, sleep.
//!
//! # Embedding
//!
//! ```no_run
//! let mut runtime = procscript::Runtime::new();
//! match runtime.run_file("scripts/join.rhai".as_ref(), &[]) {
//!     Ok(code) => std::process::exit(code),
//!     Err(error) => {
//!         eprintln!("{error}");
//!         std::process::exit(error.exit_code());
//!     }
//! }
//! ```
//!
//! Or evaluate script text and read its value (this example forks a real child):
//!
//! ```
//! let runtime = procscript::Runtime::new();
//! let ast = runtime.compile_source("example.rhai", "let p = spawn exit(3); p.join()").unwrap();
//! let code: i64 = runtime.engine().eval_ast(&ast).unwrap();
//! assert_eq!(code, 3);
//! procscript::runtime::finish(); // end daemons, wait for the other children
//! ```
//!
//! Or add the packages to an engine of your own: see [`install`] and
//! [`process::package::ProcessPackage`]. `examples/embed.rs` is a complete host.
//!
//! # Fork safety: what a host must ensure
//!
//! procscript forks the calling process. A host must call into scripts that start processes
//! only while it is **single-threaded**: a child of a threaded process can deadlock on a
//! lock (the allocator's, stdout's) that another thread held at the fork. procscript checks
//! this (`/proc/self/task`) and fails the `start` with a `ProcessError` instead of forking.
//! Further, procscript installs a SIGCHLD handler (it reaps only the children it started)
//! and children end with `_exit`, so a host's `atexit` handlers and destructors never run in
//! them. See `docs/embedding.md`.

#![cfg(unix)]
#![warn(missing_docs)]

pub mod builtins;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
pub mod command;
pub mod convert;
pub mod diagnostic;
pub mod error;
pub mod ipc;
pub mod manager;
pub mod net;
pub mod output;
pub mod package;
pub mod pool;
pub mod process;
pub mod progress;
pub mod readline;
pub mod reference;
#[cfg(feature = "cli")]
mod repl;
pub mod runtime;
pub mod signal;
pub mod sys;
pub mod trace;

pub use error::{Error, ErrorKind};
pub use package::ProcscriptPackage;
pub use process::package::ProcessPackage;
pub use process::Process;
pub use rhai;
pub use runtime::{finish, install, Runtime, ScriptError};
