//! The `procscript` binary: parse the command line, run, exit with the script's code.

fn main() {
    std::process::exit(procscript::cli::run());
}
