//! The command line: `procscript run FILE [ARGS...]` (or just `procscript FILE [ARGS...]`),
//! `check FILE`, `doc`, `report`, and the REPL.
//!
//! Uses only procscript's public library API: the binary is its first embedder.

use std::ffi::OsString;
use std::path::PathBuf;

pub mod worker;

use crate::runtime::{Builder, Runtime, ScriptError};
use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

/// Run process-orchestration scripts written in Rhai, with real fork()-based processes.
///
/// With no command, starts an interactive REPL. `procscript FILE [ARGS...]` runs FILE, as
/// `procscript run FILE [ARGS...]` does, so `#!/usr/bin/env procscript` scripts run directly.
#[derive(Debug, Parser)]
#[command(
    name = "procscript",
    version,
    about,
    long_about = None,
    override_usage = "procscript [COMMAND]\n       procscript FILE [ARGS]..."
)]
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
    /// Print the script reference (Markdown) made from the natives' doc comments.
    ///
    /// Writes no file unless given `--out PATH`.
    Doc {
        /// Write it to PATH instead of standard output (`-` means standard output).
        #[arg(
            short = 'o',
            long = "out",
            visible_alias = "output",
            value_name = "PATH"
        )]
        out: Option<PathBuf>,
        /// Check, instead of writing, that the file (`--out`, by default docs/reference.md)
        /// is current; exit 1 if it is not (or if an example given as MARKDOWN fails).
        #[arg(long)]
        check: bool,
        /// With `--check`, also run every example of these Markdown files (```rhai blocks
        /// and the procscript column of `| Python | procscript |` tables).
        #[arg(requires = "check", value_name = "MARKDOWN")]
        examples: Vec<PathBuf>,
    },
    /// Print a shell completion script: `procscript completions bash > /etc/bash_completion.d/procscript`.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// `procscript FILE [ARGS...]`: the same as `procscript run FILE [ARGS...]`.
    #[command(external_subcommand)]
    Script(Vec<OsString>),
    /// Print the man page (roff): `procscript man > procscript.1; man ./procscript.1`.
    Man,
    /// A worker of a Pool with remote hosts, started by the pool through ssh: it reads the
    /// pool's messages on stdin and ends when stdin ends. Nothing else.
    #[command(hide = true)]
    Worker,
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
    // Ctrl-C and SIGTERM end scripts and their children; only where a script runs, so that
    // elsewhere the default dispositions end a blocked open or write (`doc --out FIFO` with
    // no reader) at once. Values may nest deep.
    let scripted = matches!(
        cli.command,
        None | Some(Command::Repl | Command::Run { .. } | Command::Script(_) | Command::Worker)
    );
    let base = Runtime::builder()
        .handle_signals(scripted)
        .large_stack(true);
    base.apply();
    // A run writes only through procscript's unbuffered output, so forks need not flush
    // Rust's buffered streams.
    let unbuffered = base.clone().std_streams_unused(true);
    match cli.command {
        None | Some(Command::Repl) => crate::repl::run(base),
        Some(Command::Run {
            label,
            max_procs,
            progress,
            trace,
            timeline,
            file,
            args,
        }) => {
            let mut builder = unbuffered
                .labels(label)
                .max_procs(max_procs.unwrap_or(0))
                .progress(progress);
            if let Some(path) = trace {
                builder = builder.trace(path);
            }
            if let Some(path) = timeline {
                builder = builder.timeline(path);
            }
            run_to_exit(builder, &file, &args)
        }
        Some(Command::Report { trace, svg }) => edge(show_report(&trace, svg.as_deref())),
        Some(Command::Check { file }) => report(base.build().compile_file(&file).map(|_| 0)),
        Some(Command::Doc {
            out,
            check,
            examples,
        }) => edge(doc(out.as_deref(), check).and_then(|code| {
            let failed = run_examples(&examples)?;
            Ok(if failed { 1 } else { code })
        })),
        Some(Command::Script(words)) => run_script_words(unbuffered, words),
        Some(Command::Completions { shell }) => {
            // Into a buffer: clap_complete panics on a write error (`| head`, a full disk).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "procscript", &mut script);
            edge(print_stdout(&script, "writing the completions"))
        }
        Some(Command::Man) => edge(man()),
        Some(Command::Worker) => worker::main(unbuffered),
    }
}

/// Prints an error from the command line's own work (not a script's) with its causes.
fn edge(result: anyhow::Result<i32>) -> i32 {
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        1
    })
}

/// `report TRACE [--svg FILE]`.
fn show_report(path: &std::path::Path, svg: Option<&std::path::Path>) -> anyhow::Result<i32> {
    use crate::trace;
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
    print_stdout(&page, "writing the man page")
}

/// Writes generated text to standard output. A reader that stops early (`| head`) ends the
/// writing quietly with exit code 0, as `procscript report` does; other errors are errors.
fn print_stdout(bytes: &[u8], what: &str) -> anyhow::Result<i32> {
    use crate::output::{write_all, Stream};
    match write_all(Stream::Stdout, bytes) {
        Ok(()) | Err(nix::errno::Errno::EPIPE) => Ok(0),
        Err(errno) => {
            Err(anyhow::Error::from(std::io::Error::from(errno)).context(what.to_string()))
        }
    }
}

/// `procscript FILE [ARGS...]`, as `python FILE` runs a file (and so `#!/usr/bin/env
/// procscript` scripts run directly).
fn run_script_words(base: Builder, words: Vec<OsString>) -> i32 {
    let mut words = words.into_iter();
    let file = PathBuf::from(words.next().unwrap_or_default());
    if !file.is_file() {
        let _ = crate::output::write_line(
            crate::output::Stream::Stderr,
            &format!(
                "error: `{}` is neither a command nor a script file\n\n\
                 Usage: procscript [COMMAND]   or   procscript FILE [ARGS...]\n\n\
                 For more information, try '--help'.",
                file.display()
            ),
        );
        return 2;
    }
    let args: Vec<String> = words.map(|w| w.to_string_lossy().into_owned()).collect();
    run_to_exit(base, &file, &args)
}

/// Runs a script file for the binary, which exits right after: the engine is not dropped,
/// since freeing its thousands of registered functions only delays the exit (about a sixth
/// of an empty script's run time).
fn run_to_exit(builder: Builder, file: &std::path::Path, args: &[String]) -> i32 {
    let mut runtime = builder.build();
    let result = runtime.run_file(file, args);
    std::mem::forget(runtime);
    report(result)
}

fn doc(out: Option<&std::path::Path>, check: bool) -> anyhow::Result<i32> {
    let text = crate::reference::reference_markdown();
    let output = match out {
        Some(path) if path.as_os_str() != "-" => path,
        _ if check => std::path::Path::new("docs/reference.md"),
        _ => return print_stdout(text.as_bytes(), "writing the reference"),
    };
    if check {
        let current = std::fs::read_to_string(output)
            .with_context(|| format!("reading `{}`", output.display()))?;
        if current != text {
            eprintln!(
                "`{}` is out of date: run `procscript doc --out {}`",
                output.display(),
                output.display()
            );
            return Ok(1);
        }
        return Ok(0);
    }
    std::fs::write(output, text).with_context(|| format!("writing `{}`", output.display()))?;
    Ok(0)
}

/// Runs every example of the Markdown files, each in its own `procscript run`, a few at a
/// time; returns whether any failed (each failure is reported on stderr).
fn run_examples(files: &[PathBuf]) -> anyhow::Result<bool> {
    let mut examples = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading `{}`", file.display()))?;
        let blocks = crate::reference::rhai_examples(&text);
        let rows = crate::reference::table_examples(&text);
        for (kind, list) in [("example", blocks), ("table row", rows)] {
            for (i, code) in list.into_iter().enumerate() {
                examples.push((format!("{} {kind} {}", file.display(), i + 1), code));
            }
        }
    }
    let exe = std::env::current_exe().context("finding procscript's own path")?;
    let dir = std::env::temp_dir().join(format!("procscript-doc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let mut failed = false;
    let mut pending = examples.into_iter().enumerate().peekable();
    let mut running: Vec<(String, std::process::Child, PathBuf, std::time::Instant)> = Vec::new();
    while pending.peek().is_some() || !running.is_empty() {
        while running.len() < 4 {
            let Some((n, (name, code))) = pending.next() else {
                break;
            };
            let script = dir.join(format!("example-{n}.rhai"));
            let errors = dir.join(format!("example-{n}.err"));
            std::fs::write(&script, code)?;
            let child = std::process::Command::new(&exe)
                .arg("run")
                .arg(&script)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&errors)?)
                .spawn()
                .context("starting procscript")?;
            running.push((name, child, errors, std::time::Instant::now()));
        }
        let mut still = Vec::new();
        for (name, mut child, errors, started) in running {
            let status = match child.try_wait()? {
                Some(status) => Some(status),
                None if started.elapsed() > std::time::Duration::from_secs(60) => {
                    let _ = child.kill();
                    Some(child.wait()?)
                }
                None => None,
            };
            match status {
                Some(status) if status.success() => {}
                Some(status) => {
                    failed = true;
                    let stderr = std::fs::read_to_string(&errors).unwrap_or_default();
                    eprintln!("{name} failed ({status}):\n{stderr}");
                }
                None => still.push((name, child, errors, started)),
            }
        }
        running = still;
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(failed)
}

fn report(result: Result<i32, ScriptError>) -> i32 {
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = crate::output::write_line(crate::output::Stream::Stderr, &error.to_string());
            // Stopped by Ctrl-C or SIGTERM before the script ran (reading a script that
            // never ends, such as /dev/zero): exit as a shell reports it.
            crate::signal::pending().map_or(error.exit_code(), |signal| 128 + signal as i32)
        }
    }
}
