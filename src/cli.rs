//! The command line: `procscript run FILE [ARGS...]`, `check FILE`, and the REPL.
//!
//! Uses only procscript's public library API: the binary is its first embedder.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use procscript::{Runtime, ScriptError};

/// Run process-orchestration scripts written in Rhai, with real fork()-based processes.
///
/// With no command, starts an interactive REPL.
#[derive(Debug, Parser)]
#[command(name = "procscript", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a script; ARGS are visible to it as the array `ARGS`.
    ///
    /// Exits with the script's `exit(n)`, 0 when it ends normally, 1 on an uncaught error,
    /// 2 on a syntax error or a file that cannot be read.
    Run {
        /// The script to run.
        file: PathBuf,
        /// Arguments for the script.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Compile a script without running it, and report syntax errors.
    Check {
        /// The script to check.
        file: PathBuf,
    },
    /// Start the interactive REPL (the default with no command).
    Repl,
}

/// Runs the command line and returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Repl) => crate::repl::run(),
        Some(Command::Run { file, args }) => report(Runtime::new().run_file(&file, &args)),
        Some(Command::Check { file }) => report(Runtime::new().compile_file(&file).map(|_| 0)),
    }
}

fn report(result: Result<i32, ScriptError>) -> i32 {
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = procscript::output::write_line(procscript::output::Stream::Stderr, &error.to_string());
            error.exit_code()
        }
    }
}
