//! The `procscript` binary: parse the command line, run, exit with the script's code.

mod cli;
mod repl;

fn main() {
    std::process::exit(cli::run());
}
