//! Issue 12: what a reader of the Python tutorial types first works the first time:
//! Python's printing and builtins, `p.run()`, fields, arity errors, `procscript FILE`,
//! `procscript doc`, exit 141, hints for Python habits, and no Rust names in messages.

use std::io::BufReader;
use std::time::Duration;

use crate::support::*;

#[test]
fn print_joins_values_and_shows_bytes_and_none_as_python() {
    Test::new()
        .script(
            r#"
let b = "hello there".encode();
print(1, 2);
print("pid", 42, 2.5, true, 'c', (), [1, ()], b);
print(1, 2, 3, 4, 5, 6, 7, 8);
print(b);
print(`got ${b}`);
print(b.to_string());
let raw = blob();
for byte in [0x68, 0x69, 0xff, 0x0a, 0x5c, 0x27, 0x22, 0x00] { raw.push(byte); }
print(raw);
print("it's".encode());
print(());
let nothing = ();
print(`[${nothing}]`);
print(str(()), str(b), str(12));
print(#{ data: b });
"#,
        )
        .run()
        .success()
        .stdout(
            "1 2
pid 42 2.5 true c None [1, None] b'hello there'
1 2 3 4 5 6 7 8
b'hello there'
got b'hello there'
b'hello there'
b'hi\\xff\\n\\\\\\'\"\\x00'
b\"it's\"
None
[None]
None b'hello there' 12
#{\"data\": b'hello there'}
",
        );
}

#[test]
fn pythons_builtins_for_strings_numbers_time_and_ranges() {
    Test::new()
        .script(
            r#"
let line = "  hello world \n";
print(`[${line.strip()}] [${line.lstrip()}] [${line.rstrip()}]`);
print(line.split(), "a,b".split(","), "xxhixx".strip("x"));
print(str(3) + "!", int(" 42 ") + 1, int(-2.7), int(true), int("ff", 16), int("0x1f", 16));
print(float("2.5") * 2, float(3), float(" inf "), float(true));
print(len("主进程"), len([1, 2]), len(#{ a: 1 }), len("ab".encode()), len(range(2, 5)));
print(", ".join(["alex", "wxx", "yxx"]), "-".join(range(3)));
print("hello".startswith("he"), "hello".endswith("lo"), "hello".find("ll"), "hello".find("z"));
print(bool(""), bool("x"), bool([]), bool(0), bool(()), bool(#{ a: 1 }));
let total = 0;
for i in range(1, 4) { total += i; }
for i in range(3) { total += i; }
print(total);
let r = range(10, 20);
print(r[0], r[-1], len(r), list(range(0, 10, 4)), list(1..=3), list(#{ x: 1 }));
let t = time();
let m = monotonic();
let c = perf_counter();
sleep(0.05);
print(t > 1.7e9, monotonic() - m >= 0.05, perf_counter() - c >= 0.05, time() - t >= 0.04);
for bad in ["int(\"4.5\")", "int(\"\")", "float(\"abc\")", "len(1)", "list(3)", "r[10]", "int([])"] {
    try { eval(bad); print(`${bad}: no error`); } catch (e) { print(`${bad}: ${e.kind}`); }
}
"#,
        )
        .run()
        .success()
        .stdout(
            "[hello world] [hello world \n] [  hello world]
[\"hello\", \"world\"] [\"a\", \"b\"] hi
3! 43 -2 1 255 31
5.0 3.0 inf 1.0
3 2 1 2 3
alex, wxx, yxx 0-1-2
true true 2 -1
false true false false false true
9
10 19 10 [0, 4, 8] [1, 2, 3] [\"x\"]
true true true true
int(\"4.5\"): ValueError
int(\"\"): ValueError
float(\"abc\"): ValueError
len(1): TypeError
list(3): TypeError
r[10]: IndexError
int([]): TypeError
",
        );
}

#[test]
fn a_range_is_taken_where_a_list_is() {
    Test::new()
        .script(
            r#"
fn add(a, b) { print(a + b); }
let p = Process(add, range(3, 5));
p.start();
p.join();
let q = Process(#{ target: add, args: 1..=2 });
q.start();
q.join();
"#,
        )
        .run()
        .success()
        .stdout("7\n3\n");
}

#[test]
fn run_calls_the_target_here_and_fields_are_the_parents() {
    Test::new()
        .script(
            r#"
fn task(name) { print(`${name} in ${if getpid() == ARGS[0] { "a child" } else { "this process" }}`); 7 }
let p = Process(task, ["here"]);
print(p.run());
print(p.pid);                 // run() forks nothing
let c = Process(#{ count: 7, name: "counter", run: || { this.count += 1; print(`${this.name} sees ${this.count}`); } });
print(c.count);
c.count = 9;
c.run();                      // here: changes the parent's fields
print(c.count);
c.start();                    // the child works on its own copy
c.join();
print(c.count, c.exitcode);
try { c.missing } catch (e) { print(e.kind) }
try { p.anything = 1 } catch (e) { print(e.kind) }
try { c.run() } catch (e) { print(e.kind, e.message) }
let cmd = Process(#{ command: ["sh", "-c", "exit 3"] });
print(cmd.run());
"#,
        )
        .script_args(&["0"])
        .run()
        .success()
        .stdout(
            "here in this process
7
None
7
counter sees 10
10
counter sees 11
10 0
AttributeError
AttributeError
ProcessError cannot run `counter` here: it has started, and its target went to the child
3
",
        );
}

#[test]
fn arity_is_checked_in_the_parent_before_anything_forks() {
    let run = Test::new()
        .script(
            r#"
fn task(name) { print("never runs"); }
for make in [
    || Process(task, [1, 2]),
    || Process(task),
    || Process(#{ target: task, args: [1], kwargs: #{ name: 2 } }),
    || Process(|a, b| a, [1]),
    || Process(#{ run: |x| x }),
    || spawn task(1, 2),
] {
    try { make.call(); print("no error"); } catch (e) { print(`${e.kind}: ${e.message}`); }
}
print(active_children().len());
fn sleep(a, b) { }            // a script function may shadow a native of another arity
let s = spawn sleep(0);
print(s.join());
"#,
        )
        .run();
    run.success().stdout(
        "TypeError: task takes 1 argument, 2 given
TypeError: task takes 1 argument, 0 given
TypeError: task takes 1 argument, 2 given
TypeError: the closure takes 2 arguments, 1 given
TypeError: the closure takes 1 argument, 0 given
TypeError: task takes 1 argument, 2 given
0
0
",
    );
    assert!(!run.stderr.contains("Function not found"), "{}", run.stderr);
}

#[test]
fn an_uncaught_arity_error_names_the_call_in_the_parent() {
    Test::new()
        .script("fn task(name) { }\nlet p = Process(task, [1, 2]);\np.start();\n")
        .run()
        .code(1)
        .stderr_has("TypeError: task takes 1 argument, 2 given")
        .stderr_has("script.rhai:2:9");
}

#[test]
fn procscript_file_runs_the_file_with_its_arguments() {
    let test = Test::new();
    let script = test.dir().join("hello.rhai");
    std::fs::write(
        &script,
        "#!/usr/bin/env procscript\nprint(\"hello\", ARGS);\n",
    )
    .unwrap();
    Test::new()
        .args(&[script.to_str().unwrap(), "a b", "--flag"])
        .run()
        .success()
        .stdout("hello [\"a b\", \"--flag\"]\n");
    // As an executable with a shebang line, found through PATH.
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&script).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = std::process::Command::new(&script)
        .arg("x")
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello [\"x\"]\n");
    assert_eq!(output.status.code(), Some(0));
    let run = Test::new().args(&["no-such-file.rhai"]).run();
    run.code(2)
        .stderr_has("`no-such-file.rhai` is neither a command nor a script file");
}

#[test]
fn doc_prints_to_stdout_and_writes_only_when_told() {
    let test = Test::new();
    let dir = test.dir().to_path_buf();
    let mut cmd = std::process::Command::new(BIN);
    let output = cmd.arg("doc").current_dir(&dir).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("# procscript reference"), "{text}");
    assert!(text.contains("## Python's builtins"));
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(files.is_empty(), "doc wrote {files:?}");
    let out = dir.join("ref.md");
    let output = std::process::Command::new(BIN)
        .args(["doc", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
    let output = std::process::Command::new(BIN)
        .args(["doc", "--check", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    std::fs::write(&out, "old").unwrap();
    let output = std::process::Command::new(BIN)
        .args(["doc", "--check", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is out of date"));
}

/// Runs `script`, reads one line of its output, closes the reader, and returns the exit code.
fn exit_after_reader_closes(test: Test) -> Option<i32> {
    let mut cmd = test.command();
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let first = read_until(&mut out, |_| true);
    assert_eq!(first.len(), 1);
    drop(out);
    let output = wait_with_timeout(child, Duration::from_secs(30));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    output.status.code()
}

#[test]
fn a_last_print_into_a_closed_pipe_exits_141() {
    // `procscript run scripts/join.rhai | head -1`: the main script's last statement is the
    // print that finds the reader gone.
    assert_eq!(
        exit_after_reader_closes(Test::new().file("scripts/join.rhai")),
        Some(141)
    );
    assert_eq!(
        exit_after_reader_closes(Test::new().script("print(\"a\");\nsleep(0.3);\nprint(\"b\");\n")),
        Some(141)
    );
}

#[test]
fn python_habits_get_a_help_line_under_the_caret() {
    let cases = [
        (
            "fn task(x) { }\nlet p = Process(target=task, args=[1]);\n",
            2,
            "= help: keyword arguments are written as a map: Process(#{ target: task, args: [1] })",
        ),
        (
            "import os\nprint(os.getpid())\n",
            2,
            "= help: there is nothing to import: getpid() and friends are global",
        ),
        (
            "def f():\n    print(1)\n",
            2,
            "= help: functions are written with `fn`: fn f() { ... }",
        ),
        (
            "let x = True;\n",
            1,
            "= help: Rhai writes true, false and () (for None): write true here",
        ),
        (
            "let y = None;\n",
            1,
            "= help: Rhai writes true, false and () (for None): write () here",
        ),
        (
            "let name = \"a\";\nprint(f\"{name} is running\");\n",
            2,
            "= help: interpolation uses backtick strings: `${name} is running`",
        ),
    ];
    for (script, code, help) in cases {
        let run = Test::new().script(script).run();
        run.code(code).stderr_has(help).stderr_has("^");
        assert_eq!(
            run.stderr.matches("help:").count(),
            1,
            "one hint: {}",
            run.stderr
        );
    }
    // Ordinary errors get no hint.
    let run = Test::new().script("let a = (1 + ;\n").run();
    assert!(!run.stderr.contains("help:"), "{}", run.stderr);
}

#[test]
fn no_rust_type_name_reaches_a_message() {
    // Every procscript native, called with handles of every kind where it wants something
    // else: each message is printed, and none may name a Rust type.
    let names: Vec<(String, usize)> = natives()
        .into_iter()
        .filter(|(name, _)| !["exit", "input", "Pool", "sleep", "print"].contains(&name.as_str()))
        .filter(|(name, _)| name.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .collect();
    // Handles that never block a call: a pipe end whose peer is closed, a queue with items
    // to get, an event that is set, a reentrant lock.
    let handles = [
        "Process(|| 0)",
        "socket()",
        "RLock()",
        "q",
        "ev",
        "Value(0)",
        "pp[0]",
        "range(0, 2)",
        "1..=2",
    ];
    let mut script = String::from(
        "let pp = Pipe(); pp[1].close();\nlet q = Queue(); for i in 0..500 { q.put(i); }\n\
         let ev = Event(); ev.set();\nlet handles = [",
    );
    script.push_str(&handles.join(", "));
    script.push_str(
        "];\nfn show(e) { if type_of(e) == \"map\" { print(e.message) } else { print(e) } }\n",
    );
    for (name, arity) in &names {
        let arity = (*arity).max(1);
        for slot in 0..arity.min(3) {
            let args: Vec<String> = (0..arity)
                .map(|i| {
                    if i == slot {
                        "h".to_string()
                    } else {
                        "1".to_string()
                    }
                })
                .collect();
            script.push_str(&format!(
                "for h in handles {{ try {{ {name}({}); }} catch (e) {{ show(e); }} }}\n",
                args.join(", ")
            ));
        }
    }
    // Printing, interpolating and throwing handles, and Rhai's own errors about them.
    script.push_str(
        r#"
for h in handles {
    print(h); print(`${h}`); print(type_of(h)); print([h]);
    try { h.no_such_method(1) } catch (e) { show(e) }
    try { h + 1 } catch (e) { show(e) }
    try { h.no_such_property } catch (e) { show(e) }
    try { h[1] } catch (e) { show(e) }
    try { throw h; } catch (e) { print(e) }
}
let p = Process(|| 0);
p.run();
throw Queue();
"#,
    );
    let run = Test::new().script(&script).run();
    run.code(1);
    for text in [&run.stdout, &run.stderr] {
        for path in ["procscript::", "core::", "alloc::", "std::", "rhai::"] {
            let line = text.lines().find(|l| l.contains(path));
            assert!(line.is_none(), "a Rust name reached the user: {line:?}");
        }
    }
    assert!(run.stdout.lines().count() > 100, "{}", run.stdout);
    run.stderr_has("uncaught exception: Queue");
}
