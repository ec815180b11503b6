//! Integration tests: each drives the real `procscript` binary on fixture scripts.
//!
//! Scripts that fork must run in the binary, never in this (multi-threaded) test process.

/// The `Test` builder and system checks (zombies, descriptors).
mod support;

/// `procscript run`, `check`, exit codes, `--help`, the REPL.
mod cli;
/// Processes: start, join, names, exit codes, reaping, daemons, misuse errors.
mod process;
/// Script errors: rendering and catchable maps.
mod errors;
/// Every script in `scripts/` runs and behaves as documented.
mod scripts;
/// External commands: run, pipeline, Process(#{ command }) with pipes and files.
mod command;
