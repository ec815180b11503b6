//! The command line: `procscript run FILE [ARGS...]`, `check FILE`, and the REPL.
//!
//! Uses only procscript's public library API: the binary is its first embedder.

use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
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
        /// Prefix each printed line with the process's name and pid, `[Process-1 4242] ...`.
        #[arg(long)]
        label: bool,
        /// Cap the live processes of the whole run (children, grandchildren, pool workers,
        /// commands; the main process aside) at N; starting more is a ProcessError. 0: no cap.
        #[arg(long, value_name = "N")]
        max_procs: Option<usize>,
        /// Show a bar of children finished out of started on stderr (when it is a terminal).
        #[arg(long)]
        progress: bool,
        /// Record every process of the run (tree, times, CPU, memory, exit) as YAML.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Draw the run's processes on a timeline, as SVG.
        #[arg(long, value_name = "FILE")]
        timeline: Option<PathBuf>,
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
    /// Write the script reference (docs/reference.md) from the natives' doc comments.
    Doc {
        /// Where to write it; `-` for standard output.
        #[arg(short, long, default_value = "docs/reference.md")]
        output: PathBuf,
        /// Only check that the file is current; exit 1 if it is not.
        #[arg(long)]
        check: bool,
    },
    /// Print a shell completion script: `procscript completions bash > /etc/bash_completion.d/procscript`.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page (roff): `procscript man > procscript.1; man ./procscript.1`.
    Man,
    /// Show a trace written by `run --trace` as a process tree; optionally draw its timeline.
    Report {
        /// The trace (YAML).
        trace: PathBuf,
        /// Also write the timeline picture here, as SVG.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
}

/// Runs the command line and returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    procscript::signal::install_termination_handlers();
    procscript::runtime::raise_stack_limit();
    match cli.command {
        None | Some(Command::Repl) => crate::repl::run(),
        Some(Command::Run {
            label,
            max_procs,
            progress,
            trace,
            timeline,
            file,
            args,
        }) => {
            procscript::runtime::set_labels(label);
            // From here on the binary writes only through procscript's unbuffered output.
            procscript::output::std_streams_unused();
            procscript::process::set_max_children(max_procs.unwrap_or(0));
            if progress {
                procscript::progress::enable();
            }
            if trace.is_none() && timeline.is_none() {
                return report(Runtime::new().run_file(&file, &args));
            }
            edge(traced_run(
                &file,
                &args,
                trace.as_deref(),
                timeline.as_deref(),
            ))
        }
        Some(Command::Report { trace, svg }) => edge(show_report(&trace, svg.as_deref())),
        Some(Command::Check { file }) => report(Runtime::new().compile_file(&file).map(|_| 0)),
        Some(Command::Doc { output, check }) => edge(doc(&output, check)),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "procscript",
                &mut std::io::stdout(),
            );
            0
        }
        Some(Command::Man) => edge(man()),
    }
}

/// Prints an error from the command line's own work (not a script's) with its causes.
fn edge(result: anyhow::Result<i32>) -> i32 {
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        1
    })
}

/// `run --trace/--timeline`: the run, then the trace written where asked.
fn traced_run(
    file: &std::path::Path,
    args: &[String],
    trace_path: Option<&std::path::Path>,
    timeline_path: Option<&std::path::Path>,
) -> anyhow::Result<i32> {
    use procscript::trace;
    let near = trace_path
        .or(timeline_path)
        .context("a trace or timeline path")?;
    for (path, what) in [(trace_path, "trace"), (timeline_path, "timeline")] {
        if let Some(path) = path {
            trace::refuse_overwrite(path, file, what)?;
        }
    }
    let tracing = trace::Tracing::start(near, &file.display().to_string())?;
    let code = report(Runtime::new().run_file(file, args));
    let recorded = tracing.finish(code)?;
    if let Some(path) = trace_path {
        trace::write_yaml(&recorded, path)?;
        trace::announce("trace", path);
    }
    if let Some(path) = timeline_path {
        trace::write_output(path, trace::timeline::render(&recorded).as_bytes())?;
        trace::announce("timeline", path);
    }
    Ok(code)
}

/// `report TRACE [--svg FILE]`.
fn show_report(path: &std::path::Path, svg: Option<&std::path::Path>) -> anyhow::Result<i32> {
    use procscript::trace;
    if let Some(svg) = svg {
        trace::refuse_overwrite(svg, path, "timeline")?;
    }
    let recorded = trace::read_yaml(path)?;
    // A reader that stops early (`| head`) is not an error: exit 0, as ripgrep does.
    trace::report::print(&recorded)?;
    if let Some(svg) = svg {
        trace::write_output(svg, trace::timeline::render(&recorded).as_bytes())?;
        trace::announce("timeline", svg);
    }
    Ok(0)
}

fn man() -> anyhow::Result<i32> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("rendering the man page")?;
    std::io::Write::write_all(&mut std::io::stdout(), &page).context("writing the man page")?;
    Ok(0)
}

fn doc(output: &std::path::Path, check: bool) -> anyhow::Result<i32> {
    let text = procscript::reference::reference_markdown();
    if output.as_os_str() == "-" {
        print!("{text}");
        return Ok(0);
    }
    if check {
        let current = std::fs::read_to_string(output)
            .with_context(|| format!("reading `{}`", output.display()))?;
        if current != text {
            eprintln!(
                "`{}` is out of date: run `procscript doc`",
                output.display()
            );
            return Ok(1);
        }
        return Ok(0);
    }
    std::fs::write(output, text).with_context(|| format!("writing `{}`", output.display()))?;
    Ok(0)
}

fn report(result: Result<i32, ScriptError>) -> i32 {
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = procscript::output::write_line(
                procscript::output::Stream::Stderr,
                &error.to_string(),
            );
            error.exit_code()
        }
    }
}
