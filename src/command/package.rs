//! The Rhai surface of commands: `run`, `pipeline`, `Process(#{ command: [...] })` and the
//! pipe methods of a command process (`write_stdin`, `read_stdout`, `communicate` ...), each
//! with `host` and `ssh` for a program on another machine.
//!
//! Glue only: converts script values to [`super::Command`] and back.

use std::rc::Rc;
use std::time::Instant;

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Array, Blob, Dynamic, Map};

use super::remote::Remote;
use super::{Command, Outcome, Pipes, RunOptions, Stage, Stdio};
use crate::convert::{map_or_empty, must_be, seconds, type_error};
use crate::error::{Error, ErrorKind, RhaiResult};
use crate::process::Process;

def_package! {
    /// External programs: `run`, `pipeline`, and the pipes of `Process(#{ command: [...] })`.
    pub CommandPackage(lib) {
        combine_with_exported_module!(lib, "command", command_functions);
    }
}

/// A command argument or `cwd`: a string (or a character). A number is refused, as
/// Python's `subprocess` refuses one: turning `1` into `"1"` unasked would hide a mistake
/// such as passing a count where a file name was meant.
fn text(value: Dynamic, what: &str) -> Result<String, Error> {
    if value.is_string() || value.is_char() {
        return Ok(value.to_string());
    }
    let hint = if value.is_int() || value.is_float() {
        format!(" (write it as a string: `\"{value}\"`, or `${{n}}` in a backtick string)")
    } else {
        String::new()
    };
    Err(type_error(format!(
        "{what} must be a string, not {}{hint}",
        crate::convert::type_name(&value)
    )))
}

/// An argv: a non-empty array of strings. A single string is refused: no shell parsing.
fn argv(value: Dynamic) -> Result<Vec<String>, Error> {
    if value.is_string() {
        return Err(type_error(format!(
            "a command is a list of strings, not one string (no shell is involved): write [\"prog\", \"arg\"], not {:?}",
            value.to_string()
        )));
    }
    if !value.is::<Array>() {
        return Err(must_be(
            "a command",
            "an array of strings like [\"prog\", \"arg\"]",
            &value,
        ));
    }
    let array = value.cast::<Array>();
    if array.is_empty() {
        return Err(Error::value(
            "a command needs at least a program name: [\"prog\", \"arg\", ...]",
        ));
    }
    array
        .into_iter()
        .enumerate()
        .map(|(i, a)| text(a, &format!("command argument {i}")))
        .collect()
}

fn env(value: Dynamic) -> Result<Option<Vec<(String, String)>>, Error> {
    if value.is_unit() {
        return Ok(None);
    }
    if !value.is::<Map>() {
        return Err(must_be("`env`", "a map of names to strings", &value));
    }
    let map = value.cast::<Map>();
    map.into_iter()
        .map(|(k, v)| Ok((k.to_string(), env_value(v, &k)?)))
        .collect::<Result<Vec<_>, Error>>()
        .map(Some)
}

/// An environment value: a string, or a number written out (`#{ N: 42 }`), since every
/// environment value is text and a number there is not a likely mistake.
fn env_value(value: Dynamic, name: &str) -> Result<String, Error> {
    if value.is_int() || value.is_float() {
        return Ok(value.to_string());
    }
    text(
        value,
        &format!("the value of environment variable `{name}`"),
    )
}

fn cwd(value: Dynamic) -> Result<Option<String>, Error> {
    if value.is_unit() {
        return Ok(None);
    }
    Ok(Some(text(value, "`cwd`")?))
}

fn bytes(value: Dynamic, what: &str) -> Result<Vec<u8>, Error> {
    if value.is_blob() {
        return Ok(value.cast::<Blob>());
    }
    if value.is_string() || value.is_char() {
        return Ok(value.to_string().into_bytes());
    }
    Err(must_be(what, "a string or a blob", &value))
}

fn stdio(value: Dynamic, stream: &str) -> Result<Stdio, Error> {
    if value.is_unit() {
        return Ok(Stdio::Inherit);
    }
    let type_name = crate::convert::type_name(&value);
    let Ok(text) = value.into_string() else {
        return Err(type_error(format!(
            "`{stream}` must be \"inherit\", \"null\", \"pipe\" or a file path, not {type_name}"
        )));
    };
    Stdio::parse(&text, stream)
}

/// `host` and `ssh` as a script gave them, either possibly missing.
#[derive(Debug, Clone, Default)]
struct RemoteSpec {
    host: Option<String>,
    ssh: Option<Vec<String>>,
}

impl RemoteSpec {
    /// Takes `host` and `ssh` out of an options map.
    fn take(map: &mut Map) -> Result<Self, Error> {
        let host = match map.remove("host") {
            None => None,
            Some(v) if v.is_unit() => None,
            Some(v) if v.is_string() => Some(v.to_string()),
            Some(v) => {
                return Err(must_be(
                    "`host`",
                    "a string like \"node1\" or \"user@node1\"",
                    &v,
                ))
            }
        };
        let ssh = match map.remove("ssh") {
            None => None,
            Some(v) if v.is_unit() => None,
            Some(v) if v.is_string() => {
                return Err(type_error(format!(
                "`ssh` is a list of ssh arguments like [\"-p\", \"2222\"], not one string: {:?}",
                v.to_string()
            )))
            }
            Some(v) => {
                if !v.is::<Array>() {
                    return Err(must_be(
                        "`ssh`",
                        "a list of ssh arguments like [\"-p\", \"2222\"]",
                        &v,
                    ));
                }
                let array = v.cast::<Array>();
                Some(
                    array
                        .into_iter()
                        .map(|a| text(a, "an `ssh` argument"))
                        .collect::<Result<Vec<_>, Error>>()?,
                )
            }
        };
        Ok(Self { host, ssh })
    }

    /// This spec, with what it lacks taken from `default` (a pipeline's options).
    fn or(self, default: &Self) -> Self {
        Self {
            host: self.host.or_else(|| default.host.clone()),
            ssh: self.ssh.or_else(|| default.ssh.clone()),
        }
    }

    /// The host to run on, if any; `ssh` without `host` is a mistake worth saying.
    fn remote(self) -> Result<Option<Remote>, Error> {
        match self.host {
            Some(host) => Remote::new(host, self.ssh.unwrap_or_default()).map(Some),
            None if self.ssh.is_some() => Err(Error::value(
                "`ssh` arguments need a `host` to run the program on",
            )),
            None => Ok(None),
        }
    }
}

fn run_options(opts: Dynamic) -> Result<(RunOptions, RemoteSpec), Error> {
    let mut map = map_or_empty(opts, "the options of `run`")?;
    let remote = RemoteSpec::take(&mut map)?;
    let input = match map.remove("input") {
        None => None,
        Some(v) if v.is_unit() => None,
        Some(v) => Some(bytes(v, "`input`")?),
    };
    let timeout = seconds(&map.remove("timeout").unwrap_or(Dynamic::UNIT), "`timeout`")?;
    let cwd = cwd(map.remove("cwd").unwrap_or(Dynamic::UNIT))?;
    let env = env(map.remove("env").unwrap_or(Dynamic::UNIT))?;
    if let Some(extra) = map.keys().next() {
        return Err(Error::value(format!(
            "unknown option `{extra}` (expected `input`, `timeout`, `cwd`, `env`, `host`, `ssh`)"
        )));
    }
    Ok((
        RunOptions {
            input,
            timeout,
            cwd,
            env,
        },
        remote,
    ))
}

/// Captured output as a script string. Rhai copies the text into its own string, an
/// allocation that aborts the process when it fails: the same size is tried fallibly first,
/// so that output larger than memory allows is a catchable `MemoryError` (as in Python).
fn text_of(mut bytes: Vec<u8>) -> Result<Dynamic, Error> {
    // Rhai's copy is as large as the capacity: give back what growth left unused first.
    bytes.shrink_to_fit();
    if Vec::<u8>::new()
        .try_reserve_exact(bytes.capacity())
        .is_err()
    {
        return Err(Error::memory(format!(
            "the command's output ({} bytes) does not fit in memory as a string",
            bytes.len()
        )));
    }
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into(),
    })
}

fn outcome_map(outcome: Outcome, pipeline: bool) -> Result<Map, Error> {
    let mut map = Map::new();
    map.insert(
        "code".into(),
        Dynamic::from_int(outcome.codes.last().copied().unwrap_or(0)),
    );
    if pipeline {
        map.insert(
            "codes".into(),
            outcome
                .codes
                .iter()
                .map(|c| Dynamic::from_int(*c))
                .collect::<Array>()
                .into(),
        );
    }
    map.insert("stdout".into(), text_of(outcome.stdout)?);
    map.insert("stderr".into(), text_of(outcome.stderr)?);
    Ok(map)
}

/// `Process(#{ command: argv, cwd, env, stdin, stdout, stderr, host, ssh, name, daemon })`.
pub(crate) fn process_from_map(mut map: Map) -> Result<Process, Error> {
    let argv = argv(map.remove("command").unwrap_or(Dynamic::UNIT))?;
    let mut command = Command::new(argv);
    let remote = RemoteSpec::take(&mut map)?.remote()?;
    command.cwd = cwd(map.remove("cwd").unwrap_or(Dynamic::UNIT))?;
    command.env = env(map.remove("env").unwrap_or(Dynamic::UNIT))?;
    command.stdin = stdio(map.remove("stdin").unwrap_or(Dynamic::UNIT), "stdin")?;
    command.stdout = stdio(map.remove("stdout").unwrap_or(Dynamic::UNIT), "stdout")?;
    command.stderr = stdio(map.remove("stderr").unwrap_or(Dynamic::UNIT), "stderr")?;
    if matches!(command.stdin, Stdio::Stdout) || matches!(command.stdout, Stdio::Stdout) {
        return Err(Error::value("only `stderr` can be \"stdout\""));
    }
    let options = crate::process::package::take_options(&mut map)?;
    if let Some(extra) = map.keys().next() {
        return Err(Error::value(format!(
            "unknown command option `{extra}` (expected `command`, `cwd`, `env`, `stdin`, \
             `stdout`, `stderr`, `host`, `ssh`, `name`, `daemon`, `die_with_parent`, `limits`)"
        )));
    }
    super::process(command, remote.as_ref(), options)
}

/// The pipes of a started command process, or a clear error.
fn pipes(process: &Process, verb: &str) -> Result<Rc<Pipes>, Error> {
    super::pipes_of(process).ok_or_else(|| {
        Error::process(format!(
            "cannot {verb} `{}`: only a started `Process(#{{ command: [...] }})` has pipes",
            process.name()
        ))
    })
}

fn not_a_pipe(process: &Process, stream: &str) -> Error {
    Error::value(format!(
        "`{stream}` of `{}` is not a pipe: start it with `{stream}: \"pipe\"`",
        process.name()
    ))
}

fn read_stream(process: &Process, stdout: bool, line: bool) -> Result<Dynamic, Error> {
    let stream = if stdout { "stdout" } else { "stderr" };
    let pipes = pipes(process, &format!("read the {stream} of"))?;
    let mut reader = if stdout {
        pipes.stdout.borrow_mut()
    } else {
        pipes.stderr.borrow_mut()
    };
    if !reader.is_pipe() {
        return Err(not_a_pipe(process, stream));
    }
    if line {
        reader.read_line()?.map_or(Ok(Dynamic::UNIT), text_of)
    } else {
        text_of(reader.read_all()?)
    }
}

fn communicate(process: &Process, input: Vec<u8>, timeout: Dynamic) -> Result<Map, Error> {
    let timeout = seconds(&timeout, "the communicate timeout")?;
    let pipes = pipes(process, "communicate with")?;
    let stdin = pipes.stdin.borrow_mut().take();
    if !input.is_empty() && stdin.is_none() {
        return Err(not_a_pipe(process, "stdin"));
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let finished = {
        let mut stdout = pipes.stdout.borrow_mut();
        let mut stderr = pipes.stderr.borrow_mut();
        super::communicate(stdin, &input, &mut stdout, &mut stderr, deadline)?
    };
    let code = if finished {
        process.join(deadline.map(|d| d.saturating_duration_since(Instant::now())))?
    } else {
        None
    };
    let Some(code) = code else {
        return Err(Error::new(
            ErrorKind::TimeoutError,
            format!(
                "`{}` did not finish within {} s (it is still running)",
                process.name(),
                timeout.unwrap_or_default().as_secs_f64()
            ),
        ));
    };
    let mut map = Map::new();
    map.insert("code".into(), Dynamic::from_int(code));
    map.insert(
        "stdout".into(),
        text_of(std::mem::take(&mut pipes.stdout.borrow_mut().buffer))?,
    );
    map.insert(
        "stderr".into(),
        text_of(std::mem::take(&mut pipes.stderr.borrow_mut().buffer))?,
    );
    Ok(map)
}

/// The stages of `pipeline`: each an argv, or a map `#{ command, host, ssh }` for a stage
/// with its own host; `default` (the pipeline's options) gives the others theirs.
fn pipeline_stages(commands: Dynamic, default: &RemoteSpec) -> Result<Vec<Stage>, Error> {
    let type_name = crate::convert::type_name(&commands);
    let Some(array) = commands.try_cast::<Array>() else {
        return Err(type_error(format!("`pipeline` takes an array of commands like [[\"ls\"], [\"wc\", \"-l\"]], not {type_name}")));
    };
    if array.is_empty() {
        return Err(Error::value("a pipeline needs at least one command"));
    }
    array
        .into_iter()
        .map(|stage| {
            let mut spec = RemoteSpec::default();
            let argv = match stage.try_cast_result::<Map>() {
                Ok(mut map) => {
                    spec = RemoteSpec::take(&mut map)?;
                    let argv = argv(map.remove("command").unwrap_or(Dynamic::UNIT))?;
                    if let Some(extra) = map.keys().next() {
                        return Err(Error::value(format!(
                            "unknown option `{extra}` in a pipeline stage (expected `command`, `host`, `ssh`)"
                        )));
                    }
                    argv
                }
                Err(stage) => argv(stage)?,
            };
            Ok(Stage {
                argv,
                remote: spec.or(default).remote()?,
            })
        })
        .collect()
}

#[export_module]
#[allow(unreachable_pub)]
mod command_functions {
    use super::*;

    /// `Process(#{ command: argv, cwd, env, stdin, stdout, stderr, name, daemon,
    /// die_with_parent, limits })`: a process that runs a program (see `run` for `argv`,
    /// `cwd` and `env`). `stdin`, `stdout` and `stderr` are `"inherit"` (the default),
    /// `"null"`, `"pipe"` (then `write_stdin`, `read_stdout`, `communicate` ...) or a file
    /// path; `stderr: "stdout"` merges it into stdout. Any other map is a script process
    /// (`Process(#{ target, args })`, or an object with a `run` closure).
    ///
    /// ```rhai
    /// let p = Process(#{ command: ["echo", "hi"], stdout: "pipe" });
    /// p.start();
    /// print(p.read_stdout());   // "hi\n"
    /// print(p.join());          // 0
    /// ```
    #[rhai_fn(name = "Process", return_raw)]
    pub fn process_map(ctx: NativeCallContext, map: Map) -> RhaiResult<Process> {
        if map.contains_key("command") {
            Ok(process_from_map(map)?)
        } else {
            Ok(crate::process::package::from_map(&ctx, map)?)
        }
    }

    /// Runs a program to the end and returns `#{ code, stdout, stderr }` (stdout and stderr
    /// captured as strings, `code` its exit code, or minus the signal that ended it). The
    /// program is a list, never a shell string; stdin is inherited.
    ///
    /// A program that cannot be found is a `FileNotFoundError`; output larger than the
    /// process may allocate is a `MemoryError` (the program is ended).
    ///
    /// ```rhai
    /// let r = run(["echo", "hello"]);
    /// print(r.stdout);   // "hello\n"
    /// print(r.code);     // 0
    /// ```
    #[rhai_fn(name = "run", return_raw, volatile)]
    pub fn run(argv: Dynamic) -> RhaiResult<Map> {
        let argv = super::argv(argv)?;
        Ok(outcome_map(
            super::super::run_pipeline(vec![argv.into()], RunOptions::default())?,
            false,
        )?)
    }

    /// Runs a program to the end with options: `input` (a string or blob fed to its stdin,
    /// which is then closed), `timeout` (seconds; past it the program is killed with SIGKILL,
    /// reaped, and `run` raises `TimeoutError`), `cwd` (its directory), `env` (a map that is
    /// its whole environment), `host` and `ssh` (below).
    ///
    /// ```rhai
    /// let r = run(["tr", "a-z", "A-Z"], #{ input: "shout\n", timeout: 5 });
    /// print(r.stdout);   // "SHOUT\n"
    /// ```
    ///
    /// With `host` (`"node1"`, `"user@node1"`, a `~/.ssh/config` alias) the program runs on
    /// that host through the system's `ssh`, given the extra arguments in the list `ssh`
    /// (`["-p", "2222"]`). argv reaches it unchanged (each word quoted for the remote shell),
    /// `cwd` and `env` apply there, and `input`, stdout, stderr, `timeout` and `code` behave
    /// as locally (a signal N shows as 128 + N). If ssh itself fails (no connection, no
    /// authentication) `run` raises `ConnectionError` with ssh's message; a code of 255 is
    /// then always the program's own. Without `input`, ssh reads the script's stdin: give
    /// `input: ""` when the program needs none. See docs/remote.md.
    ///
    /// ```text
    /// let r = run(["hostname"], #{ host: "node1", ssh: ["-o", "ConnectTimeout=10"] });
    /// print(r.stdout);   // "node1\n"
    /// ```
    ///
    /// ```rhai
    /// // Nothing listens on port 1 here: ssh's connection is refused at once.
    /// try {
    ///     run(["hostname"], #{ host: "127.0.0.1", ssh: ["-p", "1", "-o", "BatchMode=yes"] });
    /// } catch (e) {
    ///     print(e.kind);   // ConnectionError (FileNotFoundError without an `ssh` client)
    /// }
    /// ```
    #[rhai_fn(name = "run", return_raw, volatile)]
    pub fn run_opts(argv: Dynamic, opts: Dynamic) -> RhaiResult<Map> {
        let argv = super::argv(argv)?;
        let (options, remote) = run_options(opts)?;
        let stage = Stage {
            argv,
            remote: remote.remote()?,
        };
        Ok(outcome_map(
            super::super::run_pipeline(vec![stage], options)?,
            false,
        )?)
    }

    /// Runs programs connected stdout to stdin, like a shell's `a | b | c`, and returns
    /// `#{ code, codes, stdout, stderr }`: `code` is the last program's, `codes` everyone's,
    /// `stdout` the last program's output and `stderr` everyone's.
    ///
    /// ```rhai
    /// let r = pipeline([["printf", "b\na\n"], ["sort"]]);
    /// print(r.stdout);   // "a\nb\n"
    /// ```
    #[rhai_fn(name = "pipeline", return_raw, volatile)]
    pub fn pipeline(commands: Dynamic) -> RhaiResult<Map> {
        let stages = pipeline_stages(commands, &RemoteSpec::default())?;
        Ok(outcome_map(
            super::super::run_pipeline(stages, RunOptions::default())?,
            true,
        )?)
    }

    /// `pipeline` with `run`'s options (`input` goes to the first program, `timeout` kills
    /// them all). With `host` and `ssh`, every program runs on that host; a stage written
    /// `#{ command: argv, host, ssh }` runs on its own host while the others stay here (data
    /// between stages passes through this machine). See docs/remote.md.
    ///
    /// ```rhai
    /// let r = pipeline([["cat"], ["wc", "-l"]], #{ input: "1\n2\n3\n" });
    /// let count = r.stdout;
    /// count.trim();
    /// print(count);   // 3
    /// ```
    ///
    /// ```text
    /// let r = pipeline([["printf", "b\na\n"], #{ command: ["sort"], host: "node1" }]);
    /// print(r.stdout);   // "a\nb\n"
    /// ```
    #[rhai_fn(name = "pipeline", return_raw, volatile)]
    pub fn pipeline_opts(commands: Dynamic, opts: Dynamic) -> RhaiResult<Map> {
        let (options, remote) = run_options(opts)?;
        let stages = pipeline_stages(commands, &remote)?;
        Ok(outcome_map(
            super::super::run_pipeline(stages, options)?,
            true,
        )?)
    }

    /// Writes a string or blob to the standard input of a command process started with
    /// `stdin: "pipe"` (all of it; `BrokenPipeError` if the program closed its end).
    ///
    /// ```rhai
    /// let p = Process(#{ command: ["cat"], stdin: "pipe", stdout: "pipe" });
    /// p.start();
    /// p.write_stdin("hi\n");
    /// p.close_stdin();
    /// print(p.read_stdout());   // "hi\n"
    /// p.join();
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn write_stdin(process: &mut Process, data: Dynamic) -> RhaiResult<()> {
        let data = bytes(data, "the data for stdin")?;
        let pipes = pipes(process, "write to the stdin of")?;
        let stdin = pipes.stdin.borrow();
        let Some(fd) = stdin.as_ref() else {
            return Err(Error::value(format!(
                "`stdin` of `{}` is not an open pipe (was it started with `stdin: \"pipe\"`, or closed?)",
                process.name()
            ))
            .into());
        };
        Ok(super::super::write_all(fd, &data)?)
    }

    /// Closes the stdin pipe of a command process: the program reads end of file. Closing
    /// twice does nothing.
    #[rhai_fn(return_raw, volatile)]
    pub fn close_stdin(process: &mut Process) -> RhaiResult<()> {
        let pipes = pipes(process, "close the stdin of")?;
        drop(pipes.stdin.borrow_mut().take());
        Ok(())
    }

    /// Reads the stdout pipe of a command process to end of file (the program ended or
    /// closed it) and returns it as a string. Then `""`.
    #[rhai_fn(return_raw, volatile)]
    pub fn read_stdout(process: &mut Process) -> RhaiResult<String> {
        Ok(read_stream(process, true, false)?.to_string())
    }

    /// Reads the stderr pipe of a command process to end of file.
    #[rhai_fn(return_raw, volatile)]
    pub fn read_stderr(process: &mut Process) -> RhaiResult<String> {
        Ok(read_stream(process, false, false)?.to_string())
    }

    /// Reads the next line of the stdout pipe, without its newline; `()` at end of file.
    ///
    /// ```rhai
    /// let p = Process(#{ command: ["printf", "a\nb\n"], stdout: "pipe" });
    /// p.start();
    /// loop {
    ///     let line = p.read_stdout_line();
    ///     if line == () { break; }
    ///     print(line);
    /// }
    /// p.join();
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn read_stdout_line(process: &mut Process) -> RhaiResult<Dynamic> {
        Ok(read_stream(process, true, true)?)
    }

    /// Reads the next line of the stderr pipe, without its newline; `()` at end of file.
    #[rhai_fn(return_raw, volatile)]
    pub fn read_stderr_line(process: &mut Process) -> RhaiResult<Dynamic> {
        Ok(read_stream(process, false, true)?)
    }

    /// Closes stdin, reads stdout and stderr (the piped ones) to the end, waits for the
    /// program, and returns `#{ code, stdout, stderr }`.
    #[rhai_fn(return_raw, volatile)]
    pub fn communicate(process: &mut Process) -> RhaiResult<Map> {
        Ok(super::communicate(process, Vec::new(), Dynamic::UNIT)?)
    }

    /// `communicate`, first feeding `input` (a string or blob) to the stdin pipe, with
    /// reading and writing interleaved so that large outputs cannot deadlock.
    #[rhai_fn(name = "communicate", return_raw, volatile)]
    pub fn communicate_input(process: &mut Process, input: Dynamic) -> RhaiResult<Map> {
        let input = if input.is_unit() {
            Vec::new()
        } else {
            bytes(input, "`input`")?
        };
        Ok(super::communicate(process, input, Dynamic::UNIT)?)
    }

    /// `communicate` that waits at most `timeout` seconds, then raises `TimeoutError` (the
    /// program keeps running: `kill()` it if it must end).
    #[rhai_fn(name = "communicate", return_raw, volatile)]
    pub fn communicate_timeout(
        process: &mut Process,
        input: Dynamic,
        timeout: Dynamic,
    ) -> RhaiResult<Map> {
        let input = if input.is_unit() {
            Vec::new()
        } else {
            bytes(input, "`input`")?
        };
        Ok(super::communicate(process, input, timeout)?)
    }
}
