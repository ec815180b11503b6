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
