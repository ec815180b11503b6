use crate::support::*;

#[test]
fn syntax_error_shows_file_line_column_source_and_caret_and_exits_2() {
    let run = Test::new()
        .script("let a = 1;\nlet b = (a + ;\nprint(b);\n")
        .run();
    run.code(2).stdout("");
    run.stderr_has("error: syntax error")
        .stderr_has("script.rhai:2:")
        .stderr_has("let b = (a + ;")
        .stderr_has("^");
}

#[test]
fn runtime_error_in_main_script_is_rendered_and_exits_1() {
    let run = Test::new()
        .script("print(\"start\");\nlet x = nope + 1;\n")
        .run();
    run.code(1).stdout("start\n");
    run.stderr_has("Variable not found: nope")
        .stderr_has("script.rhai:2:9")
        .stderr_has("let x = nope + 1;");
}

#[test]
fn error_inside_a_function_names_the_call_chain() {
    let run = Test::new()
        .script("fn inner(x) {\n    x.no_such_method()\n}\nfn outer() { inner(1) }\nouter();\n")
        .run();
    run.code(1);
    run.stderr_has("script.rhai:2:")
        .stderr_has("in call to `inner`")
        .stderr_has("in call to `outer` at")
        .stderr_has("script.rhai:5:1");
}

#[test]
fn unreadable_file_exits_2() {
    let run = Test::new().args(&["run", "/nonexistent/script.rhai"]).run();
    run.code(2)
        .stderr_has("cannot read `/nonexistent/script.rhai`");
}

#[test]
fn native_errors_are_maps_with_kind_and_message() {
    Test::new()
        .script(
            r#"
let p = Process(|| 0);
try { p.join(); } catch (e) {
    print(type_of(e));
    print(e.kind);
    print(e.message.contains("never started"));
    print("errno" in e);
}
"#,
        )
        .run()
        .success()
        .stdout("map\nProcessError\ntrue\nfalse\n");
}

#[test]
fn thrown_values_are_caught_as_thrown() {
    Test::new()
        .script(
            r#"
try { throw "plain"; } catch (e) { print(type_of(e)); print(e); }
try { throw #{ kind: "Mine", message: "m" }; } catch (e) { print(e.kind); }
"#,
        )
        .run()
        .success()
        .stdout("string\nplain\nMine\n");
}

#[test]
fn uncaught_native_error_shows_kind_and_message() {
    let run = Test::new()
        .script("let p = Process(|| 0);\np.start();\np.start();\n")
        .run();
    run.code(1)
        .stderr_has("ProcessError: cannot start a process twice")
        .stderr_has("script.rhai:3:");
}

#[test]
fn deep_recursion_works_in_debug_builds() {
    Test::new()
        .script("fn down(n) { if n == 0 { 0 } else { 1 + down(n - 1) } }\nprint(down(60));\n")
        .run()
        .success()
        .stdout("60\n");
}

#[test]
fn no_colour_codes_when_piped() {
    let run = Test::new()
        .env("NO_COLOR", "")
        .script("let x = nope;")
        .run();
    run.code(1);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
}

/// Issue 10, item 12: values nested thousands deep print, compare and drop instead of
/// aborting with a stack overflow (SIGABRT). Printing walks them without recursion, and
/// the binary lets the script's stack grow to 1 GiB for Rhai's own recursive clone,
/// compare and drop.
#[test]
fn deeply_nested_values_print_compare_and_drop() {
    // The issue's script (at a depth whose quadratic build stays quick in a debug build;
    // printing overflowed from about 3,000 levels), and a deeper value built linearly.
    let literal = std::thread::spawn(|| {
        Test::new()
            .script("let y=[]; for i in 0..4000 { y=[y]; } print(`${y}`.len());")
            .run()
    });
    let deep = Test::new()
        .script(
            "let y = []; for i in 0..12000 { y = [take(y)]; }\n\
             let m = #{}; for i in 0..3000 { m = #{k: take(m)}; }\n\
             let z = y;\n\
             print(`${z == y} ${y.to_string().len()} ${m.to_string().len()}`);",
        )
        .run();
    deep.success().stdout("true 24002 24003\n");
    literal.join().unwrap().success().stdout("8002\n");
}

/// The script runs with a raised stack limit; programs it runs get the original one back.
#[test]
fn programs_run_by_a_script_get_the_original_stack_limit() {
    let test = Test::new().script(
        "let s = run([\"sh\", \"-c\", \"ulimit -s\"]).stdout; s.trim(); print(s); input(\"\");",
    );
    let mut cmd = test.command();
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    std::io::Write::write_all(&mut stdin, b"\n").unwrap();
    child.wait().unwrap();
    let mut ours = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut ours) }, 0);
    let expected = if ours.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        (ours.rlim_cur / 1024).to_string()
    };
    assert_eq!(line.trim(), expected);
    let stack = limits
        .lines()
        .find(|l| l.starts_with("Max stack size"))
        .unwrap();
    let soft = stack.split_whitespace().nth(3).unwrap();
    if ours.rlim_cur != libc::RLIM_INFINITY && ours.rlim_max >= 1 << 30 {
        assert_eq!(soft, "1073741824", "{stack}");
    }
}

/// Nesting in the source is a syntax error at Rhai's expression depth limit, not a stack
/// overflow in the parser.
#[test]
fn deeply_nested_source_is_a_syntax_error() {
    for (open, close) in [("(", ")"), ("[", "]"), ("#{a:", "}")] {
        let script = format!(
            "let x = {}1{};",
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let run = Test::new().script(&script).run();
        run.code(2)
            .stderr_has("syntax error: Expression exceeds maximum complexity");
    }
}

/// A syntax error in a one-line 50 MB script printed 52 MB. It now shows a window of the
/// line: the whole error is a few hundred bytes, and says that Rhai's column stopped
/// counting. (1 MB here, to stay quick in a debug build; the excerpt does not grow with it.)
#[test]
fn a_syntax_error_in_a_huge_line_prints_a_short_excerpt() {
    let script = format!("{}let = ;", "let x = 1; ".repeat(100_000));
    let run = Test::new().script(&script).run();
    run.code(2)
        .stderr_has("syntax error: Expecting name of a variable")
        .stderr_has("column 65535 or later");
    assert!(
        run.stderr.len() < 2000,
        "{} bytes on stderr",
        run.stderr.len()
    );
    assert!(
        run.stderr.contains("…t x = 1; let x = 1;"),
        "{}",
        run.stderr
    );
}

/// Issue 10, item 12: errors past line 65,535 name their real line (Rhai's positions stop
/// at 65,535; such scripts are compiled from a packed copy whose positions map back).
#[test]
fn errors_past_line_65535_name_the_right_line() {
    let filler = "let filler = 1;\n".repeat(70_000);
    let runtime = std::thread::spawn({
        let script = format!(
            "fn f(x) {{\n    x.nope()\n}}\n{filler}debug(\"here\");\nlet s = `two\nlines`;\nf(1);\n"
        );
        move || Test::new().script(&script).run()
    });
    let syntax = std::thread::spawn({
        let script = format!("{filler}let = 2;\n");
        move || Test::new().script(&script).run()
    });
    let lexical = Test::new()
        .script(&format!("{filler}let s = \"never closed\n"))
        .run();
    lexical
        .code(2)
        .stderr_has("Open string is not terminated")
        .stderr_has("script.rhai:70001:9");
    let syntax = syntax.join().unwrap();
    syntax
        .code(2)
        .stderr_has("script.rhai:70001:5")
        .stderr_has("70001 │ let = 2;");
    let runtime = runtime.join().unwrap();
    runtime
        .code(1)
        .stderr_has("script.rhai:70004] \"here\"")
        .stderr_has("in call to `f` at ")
        .stderr_has("script.rhai:70007:1")
        .stderr_has("script.rhai:2:7");
}
