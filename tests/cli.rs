use std::time::Duration;

use crate::support::*;

#[test]
fn help_and_version() {
    let run = Test::new().args(&["--help"]).run();
    run.success()
        .stdout_has("run")
        .stdout_has("check")
        .stdout_has("repl");
    Test::new()
        .args(&["--version"])
        .run()
        .success()
        .stdout(&format!("procscript {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn args_reach_the_script_also_inside_functions() {
    Test::new()
        .script("fn first() { ARGS[0] }\nprint(ARGS);\nprint(first());\n")
        .script_args(&["a b", "--flag", "3"])
        .run()
        .success()
        .stdout("[\"a b\", \"--flag\", \"3\"]\na b\n");
}

#[test]
fn check_reports_syntax_errors_without_running() {
    let test = Test::new();
    let good = test.dir().join("good.rhai");
    std::fs::write(&good, "print(\"should not run\");\n").unwrap();
    let bad = test.dir().join("bad.rhai");
    std::fs::write(&bad, "fn f( {\n").unwrap();
    Test::new()
        .args(&["check", good.to_str().unwrap()])
        .run()
        .success()
        .stdout("");
    Test::new()
        .args(&["check", bad.to_str().unwrap()])
        .run()
        .code(2)
        .stderr_has("bad.rhai:");
}

#[test]
fn shebang_line_is_allowed_and_positions_stay_right() {
    Test::new()
        .script("#!/usr/bin/env procscript run\nprint(\"ok\");\nlet y = missing;\n")
        .run()
        .code(1)
        .stdout("ok\n")
        .stderr_has("script.rhai:3:9");
}

fn repl(input: &str) -> Run {
    Test::new().args(&["repl"]).stdin(input).run()
}

#[test]
fn repl_keeps_variables_and_functions_and_never_reruns_statements() {
    let run = repl(
        "fn twice(x) { x * 2 }\nlet n = 21;\nlet p = spawn print(\"child ran\");\np.join();\ntwice(n)\nprint(`n is ${n}`);\n",
    );
    run.success();
    assert_eq!(run.stdout.matches("child ran").count(), 1, "{}", run.stdout);
    run.stdout_has("=> 42\n").stdout_has("n is 21\n");
}

#[test]
fn repl_continues_unfinished_input() {
    let run = repl("let m = #{\n  a: 1,\n  b: [1,\n    2]\n};\nm.b\nfn f(x) {\n  x + 1\n}\nf(1)\n");
    run.success().stdout_has("=> [1, 2]\n").stdout_has("=> 2\n");
}

#[test]
fn repl_errors_go_to_stderr_and_the_session_goes_on() {
    let run = repl("let x = nope;\nprint(\"still here\");\nlet y = (1 + ;\nprint(\"and here\");\n");
    run.success()
        .stdout_has("still here\n")
        .stdout_has("and here\n");
    run.stderr_has("Variable not found: nope")
        .stderr_has("syntax error");
    assert!(!run.stdout.contains("nope"));
}

#[test]
fn repl_help_quit_and_exit_code() {
    let run = repl("help\nquit\nprint(\"not reached\");\n");
    run.success().stdout_has("quit").stdout_has("Ctrl-D");
    assert!(!run.stdout.contains("not reached"));
    repl("exit(3);\n").code(3);
}

#[test]
fn repl_waits_for_children_and_ends_daemons_at_the_end() {
    let run = repl(
        "let d = Process(|| sleep(60), [], #{ daemon: true }); d.start();\nlet p = Process(|| { sleep(0.3); print(\"late\"); }); p.start();\n",
    );
    run.success().stdout_has("late\n");
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
}

#[test]
fn repl_keeps_history_in_the_data_directory() {
    let home = TempDir::new();
    let home_path = home.path().to_str().unwrap();
    Test::new()
        .args(&["repl"])
        .env("HOME", home_path)
        .env("XDG_DATA_HOME", "")
        .stdin("let remembered = 1;\n")
        .run()
        .success();
    let history =
        std::fs::read_to_string(home.path().join(".local/share/procscript/history.txt")).unwrap();
    assert!(history.contains("let remembered = 1;"), "{history}");
}

#[test]
fn repl_shows_processes_by_their_text() {
    let run = repl("let p = Process(|| 0, [], #{ name: \"w\" });\np\n[p]\n");
    run.success()
        .stdout_has("=> <Process name='w' parent=")
        .stdout_has("=> [<Process name='w'");
}

#[test]
fn repl_help_name_prints_that_functions_documentation() {
    let run = repl("help join\nhelp no_such_function\n");
    run.success()
        .stdout_has("process.join(timeout)")
        .stdout_has("Waits at most `timeout` seconds");
    run.stderr_has("no procscript function named `no_such_function`");
}

#[test]
fn repl_ps_lists_live_children() {
    let run = repl("ps\nlet p = Process(|| sleep(30), [], #{ name: \"sleeper\" }); p.start();\nps\np.kill();\n");
    run.success()
        .stdout_has("no live children")
        .stdout_has("PID")
        .stdout_has("sleeper");
}

#[test]
fn repl_reports_input_that_ends_unfinished() {
    repl("let m = #{ a: 1,\n")
        .success()
        .stderr_has("syntax error");
}

#[test]
fn shell_completions_and_man_page_come_from_the_command_line_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let run = Test::new().args(&["completions", shell]).run();
        run.success().stdout_has("procscript").stdout_has("check");
    }
    Test::new()
        .args(&["man"])
        .run()
        .success()
        .stdout_has(".TH procscript")
        .stdout_has("repl");
    Test::new()
        .args(&["completions", "klingon"])
        .run()
        .code(2)
        .stderr_has("invalid value");
}

#[test]
fn label_prefixes_each_line_with_name_and_pid_and_lines_stay_whole() {
    let run = Test::new()
        .flags(&["--label"])
        .script(
            r#"
fn writer(id) { for i in 0..500 { print(`line ${i} from writer ${id}`); } }
let ps = [];
for id in 0..8 { let p = Process(writer, [id], #{ name: `w${id}` }); p.start(); ps.push(p); }
for p in ps { p.join(); }
print("multi\nline");
"#,
        )
        .run();
    run.success();
    let lines = run.lines();
    assert_eq!(lines.len(), 8 * 500 + 2);
    for line in &lines[..lines.len() - 2] {
        let (label, text) = line
            .split_once("] ")
            .unwrap_or_else(|| panic!("unlabelled line {line:?}"));
        let (name, pid) = label.trim_start_matches('[').split_once(' ').unwrap();
        assert!(pid.parse::<u32>().is_ok(), "{line:?}");
        let id = name.strip_prefix('w').unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            text.starts_with("line ") && text.ends_with(&format!(" from writer {id}")),
            "torn line {line:?}"
        );
    }
    let main = format!(
        "[MainProcess {}]",
        lines[lines.len() - 1]
            .split(' ')
            .nth(1)
            .unwrap()
            .trim_end_matches(']')
    );
    assert_eq!(lines[lines.len() - 2], format!("{main} multi"));
    assert_eq!(lines[lines.len() - 1], format!("{main} line"));
    assert!(!run.stdout.contains('\u{1b}'), "no colour when piped");
}

#[test]
fn progress_bar_is_silent_when_stderr_is_not_a_terminal() {
    let run = Test::new()
        .flags(&["--progress"])
        .script("let ps = [];\nfor i in 0..5 { let p = Process(|| 0); p.start(); ps.push(p); }\nfor p in ps { p.join(); }\nprint(\"done\");\n")
        .run();
    run.success().stdout("done\n").stderr("");
}

#[test]
fn ctrl_c_in_the_repl_stops_the_statement_and_the_session_goes_on() {
    use std::io::{BufReader, Write};
    let test = Test::new().args(&["repl"]).stdin("");
    let mut cmd = test.command();
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    writeln!(
        stdin,
        "print(\"ready\"); sleep(30); print(\"not reached\");"
    )
    .unwrap();
    read_until(&mut out, |l| l == "ready");
    // SAFETY: plain kill(2) on the pid of a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    writeln!(stdin, "print(\"after\");").unwrap();
    drop(stdin);
    let rest = read_until(&mut out, |_| false);
    child.stdout = None;
    let output = wait_with_timeout(child, std::time::Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(rest, vec!["after"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));
}
