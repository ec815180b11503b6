//! External commands: `run`, `pipeline`, `Process(#{ command: [...] })` with pipes, files,
//! null, cwd and env; missing programs, timeouts, terminate, and no zombies afterwards.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

#[test]
fn run_captures_stdout_stderr_and_exit_code() {
    Test::new()
        .script(
            r#"
let r = run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
print(r.code);
print(r.stdout == "out\n");
print(r.stderr == "err\n");
let ok = run(["echo", "hello", "world"]);
print(`${ok.code} ${ok.stdout}`);
"#,
        )
        .run()
        .success()
        .stdout("3\ntrue\ntrue\n0 hello world\n\n");
}

#[test]
fn run_reports_a_signal_as_a_negative_code() {
    Test::new()
        .script(r#"print(run(["sh", "-c", "kill -TERM $$"]).code);"#)
        .run()
        .success()
        .stdout("-15\n");
}

#[test]
fn run_feeds_input_and_big_outputs_do_not_deadlock() {
    // 2.3 MB in and out at once: both pipes fill unless writing and reading are interleaved.
    Test::new()
        .script(
            r#"
let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\n";
let text = line;
for i in 0..15 { text += text; }
let r = run(["cat"], #{ input: text, timeout: 30 });
print(r.stdout.len());
print(r.stdout == text);
print(run(["tr", "a-z", "A-Z"], #{ input: "shout\n" }).stdout);
let b = blob(3, 65);
print(run(["cat"], #{ input: b }).stdout);
"#,
        )
        .run()
        .success()
        .stdout("2359296\ntrue\nSHOUT\n\nAAA\n");
}

#[test]
fn run_timeout_kills_and_reaps_the_program() {
    let t = Test::new();
    let pidfile = t.dir().join("pid");
    let run = t
        .script(&format!(
            r#"
let start = timestamp();
try {{
    run(["sh", "-c", "echo $$ > '{0}'; exec sleep 30"], #{{ timeout: 0.3 }});
    print("no timeout");
}} catch (e) {{
    print(e.kind);
}}
print(start.elapsed < 10.0);
print(run(["cat", "{0}"]).stdout);
"#,
            pidfile.display()
        ))
        .run();
    let lines = run.lines();
    assert_eq!(lines[..2], ["TimeoutError", "true"], "{}", run.stderr);
    let pid: u32 = lines[2].trim().parse().unwrap();
    assert!(!alive(pid), "the timed-out program {pid} is still running");
}

#[test]
fn run_in_a_directory_with_an_environment() {
    let t = Test::new();
    let dir = t.dir().to_str().unwrap().to_string();
    t.script(&format!(
        r#"
print(run(["pwd"], #{{ cwd: "{dir}" }}).stdout);
// `env` is the whole environment; the program is still found on procscript's PATH.
print(run(["env"], #{{ env: #{{ GREETING: "hi there", N: 42 }} }}).stdout.split("\n").filter(|l| l != "").len());
print(run(["sh", "-c", "echo $GREETING"], #{{ env: #{{ GREETING: "hi there" }} }}).stdout);
print(run(["sh", "-c", "echo $HOME"]).stdout != "\n");
"#
    ))
    .run()
    .success()
    .stdout(&format!("{dir}\n\n2\nhi there\n\ntrue\n"));
}

#[test]
fn missing_program_is_a_file_not_found_error() {
    Test::new()
        .script(
            r#"
try { run(["no-such-program-procscript"]); } catch (e) { print(`${e.kind} ${e.errno}`); print(e.message); }
let p = Process(#{ command: ["/no/such/dir/prog"] });
try { p.start(); } catch (e) { print(e.kind); }
print(p.exitcode);
try { run(["true"], #{ cwd: "/no/such/dir" }); } catch (e) { print(e.kind); }
try { run(["/etc"]); } catch (e) { print(e.kind); }
"#,
        )
        .run()
        .success()
        .stdout(
            "FileNotFoundError 2\ncannot run `no-such-program-procscript`: No such file or directory (errno 2)\n\
             FileNotFoundError\n127\nFileNotFoundError\nPermissionError\n",
        );
}

#[test]
fn process_with_pipes_writes_reads_and_joins() {
    Test::new()
        .script(
            r#"
let p = Process(#{ command: ["cat"], stdin: "pipe", stdout: "pipe" });
p.start();
print(p.is_alive());
p.write_stdin("one\n");
p.write_stdin("two\nthree");
p.close_stdin();
print(p.read_stdout_line());
print(p.read_stdout());
print(p.read_stdout_line());
print(p.join());
print(p.exitcode);

let q = Process(#{ command: ["sh", "-c", "cat; echo bye >&2; exit 4"], stdin: "pipe", stdout: "pipe", stderr: "pipe" });
q.start();
let r = q.communicate("fed\n");
print(`${r.code} ${r.stdout.len()} ${r.stderr}`);
"#,
        )
        .run()
        .success()
        .stdout("true\none\ntwo\nthree\nNone\n0\n0\n4 4 bye\n\n");
}

#[test]
fn stream_to_and_from_files_and_null() {
    let t = Test::new();
    let input = t.dir().join("in.txt");
    std::fs::write(&input, "from a file\n").unwrap();
    let out = t.dir().join("out.txt");
    std::fs::write(&out, "old content that must be truncated away\n").unwrap();
    let err = t.dir().join("err.txt");
    t.script(&format!(
        r#"
let p = Process(#{{ command: ["sh", "-c", "cat; echo oops >&2"], stdin: "{}", stdout: "{}", stderr: "{}" }});
p.start();
print(p.join());
let q = Process(#{{ command: ["sh", "-c", "echo hidden; echo hidden too >&2"], stdout: "null", stderr: "null" }});
q.start();
print(q.join());
let n = Process(#{{ command: ["cat"], stdin: "null", stdout: "pipe" }});
n.start();
print(n.read_stdout().len());
print(n.join());
let m = Process(#{{ command: ["sh", "-c", "echo merged; echo err >&2"], stdout: "pipe", stderr: "stdout" }});
m.start();
print(m.read_stdout());
m.join();
let e = Process(#{{ command: ["echo", "inherited"] }});
e.start();
e.join();
print(run(["cat", "{1}", "{2}"]).stdout);
"#,
        input.display(),
        out.display(),
        err.display()
    ))
    .run()
    .success()
    .stdout("0\n0\n0\n0\nmerged\nerr\n\ninherited\nfrom a file\noops\n\n");
}

#[test]
fn pipeline_connects_stdout_to_stdin() {
    Test::new()
        .script(
            r#"
let r = pipeline([["printf", "b\na\nc\n"], ["sort"], ["head", "-n", "2"]]);
print(r.stdout);
print(r.codes);
print(r.code);
let s = pipeline([["cat"], ["wc", "-l"]], #{ input: "1\n2\n3\n" });
let count = s.stdout;
count.trim();
print(count);
let f = pipeline([["sh", "-c", "echo e1 >&2; echo x"], ["sh", "-c", "cat; exit 5"]]);
print(`${f.code} ${f.codes} ${f.stdout} ${f.stderr}`);
try { pipeline([["echo", "x"], ["no-such-program-procscript"], ["cat"]]); } catch (e) { print(e.kind); }
"#,
        )
        .run()
        .success()
        .stdout("a\nb\n\n[0, 0, 0]\n0\n3\n5 [0, 5] x\n e1\n\nFileNotFoundError\n");
}

#[test]
fn programs_get_sigpipe_back_and_no_blocked_signals() {
    // procscript ignores SIGPIPE for itself; `yes | head` only ends if `yes` dies of it.
    Test::new()
        .script(
            r#"
let r = pipeline([["yes"], ["head", "-n", "1"]], #{ timeout: 30 });
print(`${r.codes} ${r.stdout}`);
print(run(["sh", "-c", "grep -E '^SigBlk' /proc/self/status"]).stdout);
"#,
        )
        .run()
        .success()
        .stdout("[-13, 0] y\n\nSigBlk:\t0000000000000000\n\n");
}

/// Starts `script`, waits for `pidfile` to name a program's pid, sends `signal` to
/// procscript; returns its exit code, the program's pid and how long it took to end.
fn interrupt_while_waiting(
    script: &str,
    pidfile: &std::path::Path,
    test: &Test,
    signal: i32,
) -> (Option<i32>, u32, Duration) {
    let mut child = test.spawn();
    let read_pid = || {
        std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    };
    assert!(
        eventually(Duration::from_secs(20), || read_pid().is_some()),
        "{script}"
    );
    let program = read_pid().unwrap();
    let started = std::time::Instant::now();
    // SAFETY: plain kill(2) on the pid of a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    (status.code(), program, started.elapsed())
}

#[test]
fn ctrl_c_and_sigterm_stop_a_script_waiting_for_a_program() {
    for (wait, signal, code) in [
        ("run([\"sh\", \"-c\", \"echo $$ > '{pid}'; exec sleep 30\"]);", libc::SIGINT, 130),
        ("pipeline([[\"sh\", \"-c\", \"echo $$ > '{pid}'; exec sleep 30\"], [\"cat\"]]);", libc::SIGTERM, 143),
        (
            "let p = Process(#{ command: [\"sh\", \"-c\", \"echo $$ > '{pid}'; exec sleep 30\"], stdout: \"pipe\" });\np.start();\np.read_stdout();",
            libc::SIGTERM,
            143,
        ),
    ] {
        let test = Test::new();
        let pidfile = test.dir().join("pid");
        let script = format!("{}\nprint(\"not reached\");\n", wait.replace("{pid}", pidfile.to_str().unwrap()));
        let test = test.script(&script);
        let (exit, program, elapsed) = interrupt_while_waiting(&script, &pidfile, &test, signal);
        assert_eq!(exit, Some(code), "{script}");
        assert!(eventually(Duration::from_secs(10), || !alive(program)), "program {program} left running: {script}");
        assert!(elapsed < Duration::from_secs(15), "{elapsed:?}: {script}");
    }
}

#[test]
fn terminate_a_command_process() {
    let run = Test::new()
        .script(
            r#"
let p = Process(#{ command: ["sleep", "30"] });
p.start();
print(p.is_alive());
p.terminate();
print(p.join(10));
print(p.is_alive());
let k = Process(#{ command: ["sleep", "30"], name: "sleeper" });
k.start();
k.kill();
print(`${k.name} ${k.join(10)}`);
"#,
        )
        .run();
    run.success().stdout("true\n-15\nfalse\nsleeper -9\n");
    assert!(run.elapsed < Duration::from_secs(20));
}

#[test]
fn script_end_releases_the_pipes_of_unjoined_programs() {
    // `cat` waits for more input and `yes` for a reader: at the end of the script procscript
    // closes its pipe ends, so both end and the final wait for children returns.
    let run = Test::new()
        .script(
            r#"
let c = Process(#{ command: ["cat"], stdin: "pipe", stdout: "null" });
c.start();
c.write_stdin("never read\n");
let y = Process(#{ command: ["yes"], stdout: "pipe" });
y.start();
print(y.read_stdout_line());
print("end");
"#,
        )
        .run();
    run.success().stdout("y\nend\n");
    assert!(run.elapsed < Duration::from_secs(20));
}

#[test]
fn bad_arguments_are_catchable_errors() {
    Test::new()
        .script(
            r#"
for f in [
    || run("ls -l"),
    || run([]),
    || run([""]),
    || run(["echo"], #{ bogus: 1 }),
    || run(["echo"], #{ timeout: -1 }),
    || run(["echo", "a\x00b"]),
    || run(["echo"], #{ env: #{ "A=B": "c" } }),
    || pipeline([]),
    || pipeline("ls | wc"),
    || Process(#{ command: ["echo"], stdout: 5 }),
    || Process(#{ command: ["echo"], stdin: "stdout" }),
    || Process(#{ command: ["echo"], colour: "red" }),
    || Process(|| 1).read_stdout(),
] {
    try { f.call(); print("no error"); } catch (e) { print(e.kind); }
}
let p = Process(#{ command: ["true"] });
p.start();
try { p.read_stdout(); } catch (e) { print(e.kind); }
try { p.write_stdin("x"); } catch (e) { print(e.kind); }
p.join();
let w = Process(#{ command: ["true"], stdin: "pipe" });
w.start();
w.join();
let big = "x";
for i in 0..17 { big += big; }
try { w.write_stdin(big); print("written"); } catch (e) { print(e.kind); }
"#,
        )
        .run()
        .success()
        .stdout(
            "TypeError\nValueError\nValueError\nValueError\nValueError\nValueError\nValueError\n\
             ValueError\nTypeError\nTypeError\nValueError\nValueError\nProcessError\n\
             ValueError\nValueError\nBrokenPipeError\n",
        );
}

/// Issue 10, item 13: a number where a command argument or `cwd` wants a string is a
/// `TypeError` naming the field, as in Python's `subprocess`, never silently turned into a
/// string. (An environment value may be a number: it is written out.)
#[test]
fn numbers_for_command_cwd_or_env_are_type_errors_naming_the_field() {
    Test::new()
        .script(
            r#"
for f in [
    || run(["echo", 1]),
    || run(["echo"], #{ cwd: 7 }),
    || Process(#{ command: ["sleep", 0.5] }),
    || Process(#{ command: ["true"], cwd: 1 }),
    || run(["true"], #{ env: #{ N: [3] } }),
] {
    try { f.call(); print("no error"); } catch (e) { print(`${e.kind}: ${e.message}`); }
}
"#,
        )
        .run()
        .success()
        .stdout(
            "TypeError: command argument 1 must be a string, not i64 (write it as a string: \
             `\"1\"`, or `${n}` in a backtick string)\n\
             TypeError: `cwd` must be a string, not i64 (write it as a string: `\"7\"`, or `${n}` \
             in a backtick string)\n\
             TypeError: command argument 1 must be a string, not f64 (write it as a string: \
             `\"0.5\"`, or `${n}` in a backtick string)\n\
             TypeError: `cwd` must be a string, not i64 (write it as a string: `\"1\"`, or `${n}` \
             in a backtick string)\n\
             TypeError: the value of environment variable `N` must be a string, not array\n",
        );
}

#[test]
fn no_zombies_or_leftover_children_after_commands() {
    let t = Test::new().script(
        r#"
for i in 0..20 { run(["true"]); }
pipeline([["echo", "x"], ["cat"], ["cat"]]);
let ps = [];
for i in 0..5 {
    let p = Process(#{ command: ["sh", "-c", "exit 2"] });
    p.start();
    ps.push(p);
}
for p in ps { p.join(); }
try { run(["no-such-program-procscript"]); } catch (e) {}
try { run(["sleep", "30"], #{ timeout: 0.1 }); } catch (e) {}
print(`ready ${getpid()}`);
// Wait for the test's go-ahead line on stdin (`head` inherits procscript's stdin).
run(["head", "-n", "1"]);
print("done");
"#,
    );
    let mut cmd = t.command();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut stdout, |l| l.starts_with("ready "));
    let pid: u32 = lines
        .last()
        .unwrap()
        .trim_start_matches("ready ")
        .parse()
        .unwrap();
    // Only `head` (waiting for our line) may be a child now, and nothing is a zombie.
    let children = children_of(pid);
    assert!(children.len() <= 1, "children left: {children:?}");
    assert!(zombies_of(pid).is_empty(), "zombies: {:?}", zombies_of(pid));
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_line(&mut rest).unwrap();
    assert_eq!(rest, "done\n");
    child.stdout = Some(stdout.into_inner());
    let output = wait_with_timeout(child, Duration::from_secs(30));
    assert!(output.status.success());
}

#[test]
fn parallel_commands_script() {
    let run = Test::new().file("scripts/parallel_commands.rhai").run();
    run.success().stdout(
        "started 4 programs\n\
         Process-1 exited with 0: stdout=\"slow one done\" stderr=\"\"\n\
         Process-2 exited with 0: stdout=\"quick one done\" stderr=\"\"\n\
         Process-3 exited with 0: stdout=\"hello from echo\" stderr=\"\"\n\
         Process-4 exited with 3: stdout=\"\" stderr=\"something went wrong\"\n\
         all joined, in parallel\n",
    );
}
